/// \file
/// \brief The cross-backend harness (in the spirit of ggml's test-backend-ops): every backend op with
/// its random-input recipe, run on each available non-CPU device and compared with the CPU result.
/// Adding an op means adding one line to kCases. A kernel a backend lacks must say so with
/// "not implemented on <device>"; it is then listed, never silently replaced.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/creation.h"
#include "core/ops.h"
#include "layers/functional.h"

using namespace ember;

namespace {

using Inputs = std::vector<Tensor>;

/// One op: how to make its inputs (on the CPU), how to run it, and the relative tolerance.
struct OpCase {
  const char* name;
  std::function<Inputs(Generator&)> make;
  std::function<Tensor(const Inputs&)> run;
  double tol;
};

Tensor rn(Generator& g, const Shape& s) { return randn(s, DType::Float32, Device::cpu(), 0.0, 1.0, &g); }
Tensor pos(Generator& g, const Shape& s) { return rand(s, DType::Float32, Device::cpu(), 0.5, 2.0, &g); }
Tensor idx(Generator& g, std::int64_t hi, const Shape& s) { return randint(0, hi, s, DType::Int64, Device::cpu(), &g); }

Tensor unary(UnaryOp op, const Inputs& in) { return raw::unary(op, in[0]); }

const std::vector<OpCase> kCases = {
    {"copy (transpose)", [](Generator& g) { return Inputs{rn(g, {33, 17})}; },
     [](const Inputs& in) { return raw::contiguous(raw::transpose(in[0], 0, 1)); }, 0},
    {"to float64", [](Generator& g) { return Inputs{rn(g, {100})}; },
     [](const Inputs& in) { return raw::to_dtype(in[0], DType::Float64); }, 0},
    {"fill", [](Generator& g) { return Inputs{rn(g, {7, 5})}; },
     [](const Inputs& in) { return full(in[0].shape(), 2.5, DType::Float32, in[0].device()); }, 0},
    {"add (broadcast)", [](Generator& g) { return Inputs{rn(g, {4, 1, 6}), rn(g, {3, 6})}; },
     [](const Inputs& in) { return raw::add(in[0], in[1]); }, 1e-6},
    {"sub", [](Generator& g) { return Inputs{rn(g, {5, 6}), rn(g, {5, 6})}; },
     [](const Inputs& in) { return raw::sub(in[0], in[1]); }, 1e-6},
    {"mul (broadcast)", [](Generator& g) { return Inputs{rn(g, {5, 6}), rn(g, {6})}; },
     [](const Inputs& in) { return raw::mul(in[0], in[1]); }, 1e-6},
    {"div", [](Generator& g) { return Inputs{rn(g, {5, 6}), pos(g, {5, 6})}; },
     [](const Inputs& in) { return raw::div(in[0], in[1]); }, 1e-6},
    {"exp", [](Generator& g) { return Inputs{rn(g, {300})}; }, [](const Inputs& in) { return unary(UnaryOp::Exp, in); }, 1e-5},
    {"log", [](Generator& g) { return Inputs{pos(g, {300})}; }, [](const Inputs& in) { return unary(UnaryOp::Log, in); }, 1e-5},
    {"tanh", [](Generator& g) { return Inputs{rn(g, {300})}; }, [](const Inputs& in) { return unary(UnaryOp::Tanh, in); }, 1e-5},
    {"gelu", [](Generator& g) { return Inputs{rn(g, {300})}; }, [](const Inputs& in) { return unary(UnaryOp::GeluErf, in); }, 1e-5},
    {"gelu derivative", [](Generator& g) { return Inputs{rn(g, {300})}; },
     [](const Inputs& in) { return unary(UnaryOp::GeluErfGrad, in); }, 1e-5},
    {"layer_norm", [](Generator& g) { return Inputs{rn(g, {6, 10}), rn(g, {10}), rn(g, {10})}; },
     [](const Inputs& in) { return nn::layer_norm(in[0], in[1], in[2]); }, 1e-5},
    {"rms_norm", [](Generator& g) { return Inputs{rn(g, {6, 10}), rn(g, {10})}; },
     [](const Inputs& in) { return nn::rms_norm(in[0], in[1]); }, 1e-5},
    {"attention_softmax (causal, Tq < Tk)", [](Generator& g) { return Inputs{rn(g, {2, 3, 5, 8})}; },
     [](const Inputs& in) { return nn::attention_softmax(in[0], 0.35, true); }, 1e-5},
    {"where", [](Generator& g) { return Inputs{rn(g, {4, 5}), rn(g, {4, 5}), rn(g, {5})}; },
     [](const Inputs& in) { return raw::where(raw::binary(BinaryOp::Gt, in[0], raw::mul_scalar(in[0], 0)), in[1], in[2]); }, 0},
    {"sum over dims {0, 2}", [](Generator& g) { return Inputs{rn(g, {3, 4, 5})}; },
     [](const Inputs& in) { return raw::sum(in[0], {0, 2}); }, 1e-5},
    {"max", [](Generator& g) { return Inputs{rn(g, {6, 7})}; },
     [](const Inputs& in) { return raw::reduce(ReduceOp::Max, in[0], {1}, false); }, 0},
    {"argmax", [](Generator& g) { return Inputs{rn(g, {6, 7})}; },
     [](const Inputs& in) { return raw::arg_reduce(true, in[0], 1, false); }, 0},
    {"cumsum", [](Generator& g) { return Inputs{rn(g, {4, 9})}; },
     [](const Inputs& in) { return raw::scan(ScanOp::Cumsum, in[0], 1); }, 1e-5},
    {"softmax", [](Generator& g) { return Inputs{rn(g, {5, 11})}; },
     [](const Inputs& in) { return raw::softmax(in[0], -1, false); }, 1e-5},
    {"log_softmax (dim 0)", [](Generator& g) { return Inputs{rn(g, {5, 11})}; },
     [](const Inputs& in) { return raw::softmax(in[0], 0, true); }, 1e-5},
    {"matmul (batched, transposed)", [](Generator& g) { return Inputs{rn(g, {3, 8, 16}), rn(g, {3, 12, 16})}; },
     [](const Inputs& in) { return raw::matmul(in[0], raw::transpose(in[1], -1, -2)); }, 1e-4},
    {"index_select", [](Generator& g) { return Inputs{rn(g, {6, 4}), idx(g, 6, {9})}; },
     [](const Inputs& in) { return raw::index_select(in[0], 0, in[1]); }, 0},
    {"gather", [](Generator& g) { return Inputs{rn(g, {4, 6}), idx(g, 6, {4, 3})}; },
     [](const Inputs& in) { return raw::gather(in[0], 1, in[1]); }, 0},
    {"scatter_add", [](Generator& g) { return Inputs{rn(g, {4, 6}), idx(g, 6, {4, 3}), rn(g, {4, 3})}; },
     [](const Inputs& in) { return raw::scatter_add(in[0], 1, in[1], in[2]); }, 1e-6},
    {"tril", [](Generator& g) { return Inputs{rn(g, {2, 5, 5})}; },
     [](const Inputs& in) { return raw::triangle(in[0], 0, false); }, 0},
    {"cat", [](Generator& g) { return Inputs{rn(g, {2, 3}), rn(g, {4, 3})}; },
     [](const Inputs& in) { return raw::cat({in[0], in[1]}, 0); }, 0},
};

/// Largest |a - b| / (1 + |b|) (NaN where either is NaN and the other is not).
double rel_error(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double worst = 0;
  for (std::size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) != std::isnan(vb[i])) return NAN;
    if (!std::isnan(va[i])) worst = std::max(worst, std::abs(va[i] - vb[i]) / (1.0 + std::abs(vb[i])));
  }
  return worst;
}

}  // namespace

TEST_CASE("every backend op agrees with the CPU backend or reports itself missing") {
  std::vector<Device> devices;
  for (int i = 0; i < cuda_device_count(); ++i) devices.push_back(Device::cuda(i));
  for (const Device& dev : devices) {
    std::vector<std::string> missing;
    for (const auto& c : kCases) {
      CAPTURE(c.name);
      Generator gen(2024);
      const Inputs cpu_in = c.make(gen);
      const Tensor want = c.run(cpu_in);
      Inputs dev_in;
      for (const auto& t : cpu_in) dev_in.push_back(raw::to_device(t, dev));
      try {
        const Tensor got = raw::to_device(c.run(dev_in), Device::cpu());
        REQUIRE(got.shape() == want.shape());
        CHECK(got.dtype() == want.dtype());
        CHECK(rel_error(got, want) <= c.tol);
      } catch (const Error& e) {
        const std::string what = e.what();
        CHECK_MESSAGE(what.find("not implemented on") != std::string::npos, what);
        missing.push_back(c.name);
      }
    }
    std::string list;
    for (const auto& m : missing) list += "\n  " + m;
    MESSAGE(dev.str() << ": " << kCases.size() - missing.size() << " of " << kCases.size()
                      << " ops run there; not implemented:" << list);
  }
}
