/// \file
/// \brief gradcheck (central differences in Float64) for every differentiable op of autograd/ops.h
/// and the differentiable Tensor methods. One TEST_CASE per op family, one SUBCASE per table row:
/// adding an op is one line in its family's table.
#include <algorithm>
#include <functional>
#include <random>
#include <string>

#include "helpers.h"

using namespace ember;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
using Init = std::function<Tensor(const Shape&)>;

/// Standard normal entries.
Tensor normal(const Shape& s) { return randn(s, DType::Float64); }
/// Entries in [0.5, 2): for log, sqrt, rsqrt, pow with real exponents, divisors.
Tensor positive(const Shape& s) { return rand(s, DType::Float64, Device::cpu(), 0.5, 2.0); }

/// Normal entries pushed at least `margin` away from each kink (where the op is not differentiable).
Init away_from(std::vector<double> kinks, double margin = 0.1) {
  return [kinks, margin](const Shape& s) {
    auto v = randn(s, DType::Float64).to_vector<double>();
    for (double& x : v)
      for (double k : kinks)
        if (std::abs(x - k) < margin) x = x >= k ? k + 2 * margin : k - 2 * margin;
    return from_vector(v, s, DType::Float64);
  };
}

/// Distinct entries spaced 0.1 apart, shuffled: max/min have a unique winner that a finite
/// difference step cannot change.
Tensor distinct(const Shape& s) {
  const std::int64_t n = numel_of(s);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[i] = 0.1 * static_cast<double>(i) - 0.05 * static_cast<double>(n);
  std::mt19937 rng(7);
  std::shuffle(v.begin(), v.end(), rng);
  return from_vector(v, s, DType::Float64);
}

/// Normal entries with every third one set to exactly 0 (cumprod through zeros).
Tensor with_zeros(const Shape& s) {
  auto v = randn(s, DType::Float64).to_vector<double>();
  for (std::size_t i = 0; i < v.size(); i += 3) v[i] = 0.0;
  return from_vector(v, s, DType::Float64);
}

/// One differentiable input: its shape and how to fill it.
struct In {
  Shape shape;
  Init init = normal;
};

/// One table row: a name, the inputs that get gradients, and the function of them.
struct Case {
  std::string name;
  std::vector<In> inputs;
  Fn fn;
  double eps = 1e-6, atol = 1e-5, rtol = 1e-3;
};

/// Runs gradcheck on every row, each in its own SUBCASE.
void check_cases(const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    SUBCASE(c.name.c_str()) {
      manual_seed(20240601);
      std::vector<Tensor> xs;
      for (const auto& in : c.inputs) {
        Tensor x = in.init(in.shape);
        x.requires_grad_();
        xs.push_back(x);
      }
      const GradcheckResult r = gradcheck(c.fn, xs, c.eps, c.atol, c.rtol);
      CHECK_MESSAGE(r.ok, c.name << ": " << r.message);
      // The analytic gradient must have reached every input, with its shape.
      for (const auto& x : xs)
        if (x.grad().defined()) CHECK(x.grad().shape() == x.shape());
    }
  }
}

Tensor i64(std::vector<std::int64_t> v, const Shape& s) { return from_vector(v, s); }
Tensor mask_of(std::vector<double> v, const Shape& s) { return gt(from_vector(v, s), scalar_tensor(0.5)); }

}  // namespace

TEST_CASE("gradcheck: arithmetic with broadcasting") {
  const Shape A{3, 1, 4}, B{2, 1};
  check_cases({
      {"add [3,1,4] + [2,1]", {{A}, {B}}, [](const auto& x) { return add(x[0], x[1]); }},
      {"add [2,3] + [3]", {{{2, 3}}, {{3}}}, [](const auto& x) { return x[0] + x[1]; }},
      {"add [] + [2,3]", {In{Shape{}}, {{2, 3}}}, [](const auto& x) { return add(x[0], x[1]); }},
      {"sub [3,1,4] - [2,1]", {{A}, {B}}, [](const auto& x) { return sub(x[0], x[1]); }},
      {"sub [4] - [3,1]", {{{4}}, {{3, 1}}}, [](const auto& x) { return x[0] - x[1]; }},
      {"mul [3,1,4] * [2,1]", {{A}, {B}}, [](const auto& x) { return mul(x[0], x[1]); }},
      {"mul same input twice", {{{2, 3}}}, [](const auto& x) { return x[0] * x[0]; }},
      {"div [3,1,4] / [2,1]", {{A}, {B, positive}}, [](const auto& x) { return div(x[0], x[1]); }},
      {"div [2,1] / [3,1,4]", {{B}, {A, positive}}, [](const auto& x) { return x[0] / x[1]; }},
      {"pow tensor [3,1,4] ^ [2,1]", {{A, positive}, {B}}, [](const auto& x) { return pow(x[0], x[1]); }},
      {"pow tensor [2,3] ^ []", {{{2, 3}, positive}, In{Shape{}}}, [](const auto& x) { return pow(x[0], x[1]); }},
      {"pow(x, 3) on signed x", {{{3, 4}}}, [](const auto& x) { return pow(x[0], 3.0); }},
      {"pow(x, 2.5)", {{{3, 4}, positive}}, [](const auto& x) { return pow(x[0], 2.5); }},
      {"pow(x, 0.5)", {{{3, 4}, positive}}, [](const auto& x) { return pow(x[0], 0.5); }},
      {"pow(x, -1.5)", {{{3, 4}, positive}}, [](const auto& x) { return pow(x[0], -1.5); }},
      {"maximum [3,1,4] , [2,1]", {{A}, {B}}, [](const auto& x) { return maximum(x[0], x[1]); }},
      {"minimum [3,1,4] , [2,1]", {{A}, {B}}, [](const auto& x) { return minimum(x[0], x[1]); }},
      {"maximum [2,3] , [3]", {{{2, 3}}, {{3}}}, [](const auto& x) { return maximum(x[0], x[1]); }},
      {"x + 2", {{{2, 3}}}, [](const auto& x) { return x[0] + 2.0; }},
      {"2 + x", {{{2, 3}}}, [](const auto& x) { return 2.0 + x[0]; }},
      {"x - 2", {{{2, 3}}}, [](const auto& x) { return x[0] - 2.0; }},
      {"2 - x", {{{2, 3}}}, [](const auto& x) { return 2.0 - x[0]; }},
      {"x * 3", {{{2, 3}}}, [](const auto& x) { return x[0] * 3.0; }},
      {"3 * x", {{{2, 3}}}, [](const auto& x) { return 3.0 * x[0]; }},
      {"x / 4", {{{2, 3}}}, [](const auto& x) { return x[0] / 4.0; }},
      {"3 / x", {{{2, 3}, positive}}, [](const auto& x) { return 3.0 / x[0]; }},
      {"-x (operator)", {{{2, 3}}}, [](const auto& x) { return -x[0]; }},
  });
}

TEST_CASE("gradcheck: unary math") {
  const Shape S{3, 4};
  const Init nz = away_from({0.0});
  check_cases({
      {"neg", {{S}}, [](const auto& x) { return neg(x[0]); }},
      {"exp", {{S}}, [](const auto& x) { return exp(x[0]); }},
      {"log", {{S, positive}}, [](const auto& x) { return log(x[0]); }},
      {"log1p", {{S, positive}}, [](const auto& x) { return log1p(x[0]); }},
      {"expm1", {{S}}, [](const auto& x) { return expm1(x[0]); }},
      {"sqrt", {{S, positive}}, [](const auto& x) { return sqrt(x[0]); }},
      {"rsqrt", {{S, positive}}, [](const auto& x) { return rsqrt(x[0]); }},
      {"abs", {{S, nz}}, [](const auto& x) { return abs(x[0]); }},
      {"square", {{S}}, [](const auto& x) { return square(x[0]); }},
      {"sin", {{S}}, [](const auto& x) { return sin(x[0]); }},
      {"cos", {{S}}, [](const auto& x) { return cos(x[0]); }},
      {"tanh", {{S}}, [](const auto& x) { return tanh(x[0]); }},
      {"sigmoid", {{S}}, [](const auto& x) { return sigmoid(x[0]); }},
      {"relu", {{S, nz}}, [](const auto& x) { return relu(x[0]); }},
      {"gelu (erf)", {{S}}, [](const auto& x) { return gelu(x[0]); }},
      {"gelu (tanh approximation)", {{S}}, [](const auto& x) { return gelu(x[0], true); }},
      {"silu", {{S}}, [](const auto& x) { return silu(x[0]); }},
      {"softplus", {{S}}, [](const auto& x) { return softplus(x[0]); }},
      {"elu alpha 1", {{S, nz}}, [](const auto& x) { return elu(x[0]); }},
      {"elu alpha 0.5", {{S, nz}}, [](const auto& x) { return elu(x[0], 0.5); }},
      {"clamp [-0.5, 0.5]", {{S, away_from({-0.5, 0.5})}}, [](const auto& x) { return clamp(x[0], -0.5, 0.5); }},
      {"clamp [0.2, 3]", {{S, away_from({0.2, 3.0})}}, [](const auto& x) { return clamp(x[0], 0.2, 3.0); }},
  });
}

TEST_CASE("gradcheck: where and masked_fill") {
  const Tensor cond = mask_of({1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 0}, {3, 4});
  const Tensor row_cond = mask_of({1, 0, 1}, {3, 1});
  const Tensor col_mask = mask_of({0, 1, 1, 0}, {4});
  check_cases({
      {"where same shapes", {{{3, 4}}, {{3, 4}}}, [cond](const auto& x) { return where(cond, x[0], x[1]); }},
      {"where b broadcast [4]", {{{3, 4}}, {{4}}}, [cond](const auto& x) { return where(cond, x[0], x[1]); }},
      {"where cond [3,1], a [1,4], b []", {{{1, 4}}, In{Shape{}}}, [row_cond](const auto& x) { return where(row_cond, x[0], x[1]); }},
      {"masked_fill [3,4] mask [3,4]", {{{3, 4}}}, [cond](const auto& x) { return masked_fill(x[0], cond, 2.5); }},
      {"masked_fill [3,4] mask [4]", {{{3, 4}}}, [col_mask](const auto& x) { return masked_fill(x[0], col_mask, -3.0); }},
  });
}

TEST_CASE("gradcheck: reductions over dim sets, with and without keepdim") {
  const Shape S{3, 4, 5};
  const std::vector<std::vector<std::int64_t>> dim_sets{{}, {0}, {1}, {-1}, {0, 2}, {2, 0, 1}};
  std::vector<Case> cases;
  for (const auto& dims : dim_sets)
    for (bool keep : {false, true}) {
      std::string tag = " dims {";
      for (auto d : dims) tag += std::to_string(d) + ",";
      tag += keep ? "} keepdim" : "}";
      cases.push_back({"sum" + tag, {{S}}, [dims, keep](const auto& x) { return sum(x[0], dims, keep); }});
      cases.push_back({"mean" + tag, {{S}}, [dims, keep](const auto& x) { return mean(x[0], dims, keep); }});
      cases.push_back({"var unbiased" + tag, {{S}}, [dims, keep](const auto& x) { return var(x[0], dims, true, keep); }});
      cases.push_back({"var biased" + tag, {{S}}, [dims, keep](const auto& x) { return var(x[0], dims, false, keep); }});
      cases.push_back({"max" + tag, {{S, distinct}}, [dims, keep](const auto& x) { return max(x[0], dims, keep); }});
      cases.push_back({"min" + tag, {{S, distinct}}, [dims, keep](const auto& x) { return min(x[0], dims, keep); }});
      if (!dims.empty() || keep)
        cases.push_back({"logsumexp" + tag, {{S}}, [dims, keep](const auto& x) { return logsumexp(x[0], dims, keep); }});
      for (double p : {1.0, 2.0, 3.0})
        cases.push_back({"norm p=" + std::to_string(static_cast<int>(p)) + tag, {{S, away_from({0.0})}},
                         [dims, keep, p](const auto& x) { return norm(x[0], p, dims, keep); }});
    }
  cases.push_back({"logsumexp all dims", {{S}}, [](const auto& x) { return logsumexp(x[0], {}); }});
  cases.push_back({"logsumexp large values", {{{2, 3}}}, [](const auto& x) { return logsumexp(x[0] * 300.0, {1}); }});
  cases.push_back({"mean of 1-D", {{{7}}}, [](const auto& x) { return mean(x[0]); }});
  check_cases(cases);
}

TEST_CASE("gradcheck: cumsum and cumprod") {
  const Shape S{3, 4, 5};
  check_cases({
      {"cumsum dim 0", {{S}}, [](const auto& x) { return cumsum(x[0], 0); }},
      {"cumsum dim 1", {{S}}, [](const auto& x) { return cumsum(x[0], 1); }},
      {"cumsum dim -1", {{S}}, [](const auto& x) { return cumsum(x[0], -1); }},
      {"cumsum 1-D", {{{6}}}, [](const auto& x) { return cumsum(x[0], 0); }},
      {"cumprod dim 0", {{S}}, [](const auto& x) { return cumprod(x[0], 0); }},
      {"cumprod dim 1", {{S}}, [](const auto& x) { return cumprod(x[0], 1); }},
      {"cumprod dim -1", {{S}}, [](const auto& x) { return cumprod(x[0], -1); }},
      {"cumprod with zeros dim -1", {{S, with_zeros}}, [](const auto& x) { return cumprod(x[0], -1); }},
      {"cumprod with zeros dim 0", {{S, with_zeros}}, [](const auto& x) { return cumprod(x[0], 0); }},
      {"cumprod of a transposed view", {{{4, 3}}}, [](const auto& x) { return cumprod(transpose(x[0], 0, 1), 1); }},
  });
}

TEST_CASE("gradcheck: softmax and log_softmax") {
  const Shape S{3, 4, 5};
  check_cases({
      {"softmax dim 0", {{S}}, [](const auto& x) { return softmax(x[0], 0); }},
      {"softmax dim 1", {{S}}, [](const auto& x) { return softmax(x[0], 1); }},
      {"softmax dim -1", {{S}}, [](const auto& x) { return softmax(x[0], -1); }},
      {"log_softmax dim 0", {{S}}, [](const auto& x) { return log_softmax(x[0], 0); }},
      {"log_softmax dim 1", {{S}}, [](const auto& x) { return log_softmax(x[0], 1); }},
      {"log_softmax dim -1", {{S}}, [](const auto& x) { return log_softmax(x[0], -1); }},
      {"softmax of a transposed view", {{{5, 3}}}, [](const auto& x) { return softmax(transpose(x[0], 0, 1), -1); }},
  });
}

TEST_CASE("gradcheck: matmul") {
  check_cases({
      {"2-D [3,4] @ [4,5]", {{{3, 4}}, {{4, 5}}}, [](const auto& x) { return matmul(x[0], x[1]); }},
      {"batched [2,3,4] @ [2,4,5]", {{{2, 3, 4}}, {{2, 4, 5}}}, [](const auto& x) { return matmul(x[0], x[1]); }},
      {"broadcast batch [2,1,3,4] @ [3,4,2]", {{{2, 1, 3, 4}}, {{3, 4, 2}}}, [](const auto& x) { return matmul(x[0], x[1]); }},
      {"broadcast batch [2,3,4] @ [4,5]", {{{2, 3, 4}}, {{4, 5}}}, [](const auto& x) { return matmul(x[0], x[1]); }},
      {"1-D @ 1-D", {{{4}}, {{4}}}, [](const auto& x) { return matmul(x[0], x[1]); }},
      {"1-D @ 2-D", {{{4}}, {{4, 3}}}, [](const auto& x) { return matmul(x[0], x[1]); }},
      {"2-D @ 1-D", {{{3, 4}}, {{4}}}, [](const auto& x) { return matmul(x[0], x[1]); }},
      {"1-D @ 3-D", {{{4}}, {{2, 4, 3}}}, [](const auto& x) { return matmul(x[0], x[1]); }},
      {"3-D @ 1-D", {{{2, 3, 4}}, {{4}}}, [](const auto& x) { return matmul(x[0], x[1]); }},
      {"transposed views A^T @ B^T", {{{4, 3}}, {{5, 4}}},
       [](const auto& x) { return matmul(transpose(x[0], 0, 1), transpose(x[1], 0, 1)); }},
      {"batched transposed view", {{{2, 4, 3}}, {{2, 4, 5}}}, [](const auto& x) { return matmul(transpose(x[0], -1, -2), x[1]); }},
      {"same input x @ x^T", {{{3, 4}}}, [](const auto& x) { return matmul(x[0], transpose(x[0], 0, 1)); }},
  });
}

TEST_CASE("gradcheck: views and reshapes") {
  check_cases({
      {"view [3,4] -> [2,6]", {{{3, 4}}}, [](const auto& x) { return view(x[0], {2, 6}); }},
      {"view with -1", {{{3, 4}}}, [](const auto& x) { return view(x[0], {-1, 3}); }},
      {"reshape (view)", {{{3, 4}}}, [](const auto& x) { return reshape(x[0], {4, 3}); }},
      {"reshape (copy of a transposed view)", {{{3, 4}}}, [](const auto& x) { return reshape(transpose(x[0], 0, 1), {12}); }},
      {"transpose 0,1", {{{3, 4}}}, [](const auto& x) { return transpose(x[0], 0, 1); }},
      {"transpose -1,-3", {{{2, 3, 4}}}, [](const auto& x) { return transpose(x[0], -1, -3); }},
      {"permute 2,0,1", {{{2, 3, 4}}}, [](const auto& x) { return permute(x[0], {2, 0, 1}); }},
      {"permute -1,0,1", {{{2, 3, 4}}}, [](const auto& x) { return permute(x[0], {-1, 0, 1}); }},
      {"squeeze all", {{{3, 1, 4, 1}}}, [](const auto& x) { return squeeze(x[0]); }},
      {"squeeze dim 1", {{{3, 1, 4, 1}}}, [](const auto& x) { return squeeze(x[0], {1}); }},
      {"unsqueeze 0", {{{3, 4}}}, [](const auto& x) { return unsqueeze(x[0], 0); }},
      {"unsqueeze -1", {{{3, 4}}}, [](const auto& x) { return unsqueeze(x[0], -1); }},
      {"expand [3,1] -> [2,3,4]", {{{3, 1}}}, [](const auto& x) { return expand(x[0], {2, 3, 4}); }},
      {"expand [] -> [2,2]", {In{Shape{}}}, [](const auto& x) { return expand(x[0], {2, 2}); }},
      {"flatten all", {{{2, 3, 4}}}, [](const auto& x) { return flatten(x[0]); }},
      {"flatten 1..2", {{{2, 3, 4, 2}}}, [](const auto& x) { return flatten(x[0], 1, 2); }},
      {"flatten of a permuted view", {{{2, 3, 4}}}, [](const auto& x) { return flatten(permute(x[0], {1, 2, 0})); }},
  });
}

TEST_CASE("gradcheck: slicing and indexing") {
  const Tensor rep = i64({2, 0, 2, 1, 2}, {5});
  const Tensor gidx1 = i64({0, 3, 3, 1, 2, 2, 0, 0, 1, 3, 3, 3, 2, 1, 0}, {3, 5});
  const Tensor gidx0 = i64({2, 0, 1, 1, 0, 0, 2, 2}, {2, 4});
  const Tensor sidx0 = i64({0, 2, 2, 1, 0, 0}, {2, 3});
  check_cases({
      {"slice dim 0", {{{5, 3}}}, [](const auto& x) { return slice(x[0], 0, 1, 4); }},
      {"slice dim 1 step 2", {{{3, 7}}}, [](const auto& x) { return slice(x[0], 1, 0, 7, 2); }},
      {"slice dim -1 step 3 from 1", {{{2, 3, 8}}}, [](const auto& x) { return slice(x[0], -1, 1, 8, 3); }},
      {"slice negative start", {{{6}}}, [](const auto& x) { return slice(x[0], 0, -4, 6); }},
      {"select dim 0", {{{3, 4}}}, [](const auto& x) { return select(x[0], 0, 1); }},
      {"select dim 1 negative index", {{{3, 4}}}, [](const auto& x) { return select(x[0], 1, -1); }},
      {"narrow", {{{3, 6}}}, [](const auto& x) { return narrow(x[0], 1, 2, 3); }},
      {"index_select dim 0 repeated", {{{3, 4}}}, [rep](const auto& x) { return index_select(x[0], 0, rep); }},
      {"index_select dim 1 repeated", {{{2, 3}}}, [rep](const auto& x) { return index_select(x[0], 1, rep); }},
      {"index_select dim -1 of 3-D", {{{2, 2, 3}}}, [rep](const auto& x) { return index_select(x[0], -1, rep); }},
      {"gather dim 1 repeated", {{{3, 4}}}, [gidx1](const auto& x) { return gather(x[0], 1, gidx1); }},
      {"gather dim 0", {{{3, 4}}}, [gidx0](const auto& x) { return gather(x[0], 0, gidx0); }},
      {"scatter_add dim 0 (x and src)", {{{3, 3}}, {{2, 3}}},
       [sidx0](const auto& x) { return scatter_add(x[0], 0, sidx0, x[1]); }},
      {"scatter_add dim 1, src larger than index", {{{2, 4}}, {{3, 5}}},
       [sidx0](const auto& x) { return scatter_add(x[0], 1, sidx0, x[1]); }},
      {"scatter_add dim 0, src larger than index", {{{3, 3}}, {{4, 3}}},
       [sidx0](const auto& x) { return scatter_add(x[0], 0, sidx0, x[1]); }},
  });
}

TEST_CASE("gradcheck: cat, stack, split, chunk") {
  check_cases({
      {"cat dim 0", {{{2, 3}}, {{4, 3}}}, [](const auto& x) { return cat({x[0], x[1]}, 0); }},
      {"cat dim -1, three inputs", {{{2, 1}}, {{2, 3}}, {{2, 2}}}, [](const auto& x) { return cat({x[0], x[1], x[2]}, -1); }},
      {"cat same input twice", {{{2, 3}}}, [](const auto& x) { return cat({x[0], x[0]}, 1); }},
      {"stack dim 0", {{{2, 3}}, {{2, 3}}}, [](const auto& x) { return stack({x[0], x[1]}, 0); }},
      {"stack dim -1", {{{2, 3}}, {{2, 3}}, {{2, 3}}}, [](const auto& x) { return stack({x[0], x[1], x[2]}, -1); }},
      {"split into 2,2,1 (pieces mapped differently)", {{{5, 3}}},
       [](const auto& x) {
         auto p = split(x[0], 2, 0);
         return cat({p[0] * 2.0, exp(p[1]), square(p[2])}, 0);
       }},
      {"split dim 1, one piece used", {{{2, 6}}}, [](const auto& x) { return split(x[0], 4, 1)[1]; }},
      {"chunk 3 of 7 along dim 1", {{{2, 7}}},
       [](const auto& x) {
         auto p = chunk(x[0], 3, 1);
         return cat({sin(p[0]), p[1] * 3.0, p[2]}, 1);
       }},
      {"chunk: only the last piece used", {{{6, 2}}}, [](const auto& x) { return chunk(x[0], 3, 0)[2]; }},
  });
}

TEST_CASE("gradcheck: tril, triu, pad") {
  check_cases({
      {"tril", {{{4, 4}}}, [](const auto& x) { return tril(x[0]); }},
      {"tril k=1", {{{3, 5}}}, [](const auto& x) { return tril(x[0], 1); }},
      {"tril k=-1 batched", {{{2, 4, 3}}}, [](const auto& x) { return tril(x[0], -1); }},
      {"triu", {{{4, 4}}}, [](const auto& x) { return triu(x[0]); }},
      {"triu k=2", {{{3, 5}}}, [](const auto& x) { return triu(x[0], 2); }},
      {"triu k=-1 batched", {{{2, 3, 4}}}, [](const auto& x) { return triu(x[0], -1); }},
      {"pad last dim positive", {{{2, 3}}}, [](const auto& x) { return pad(x[0], {1, 2}, 0.5); }},
      {"pad last two dims positive", {{{2, 3}}}, [](const auto& x) { return pad(x[0], {0, 1, 2, 0}); }},
      {"pad negative (crop)", {{{3, 5}}}, [](const auto& x) { return pad(x[0], {-1, -2, 0, -1}); }},
      {"pad mixed signs", {{{2, 3, 4}}}, [](const auto& x) { return pad(x[0], {2, -1, -1, 1}, -3.0); }},
  });
}

TEST_CASE("gradcheck: Tensor methods (copies, conversions, in-place ops on non-leaves)") {
  check_cases({
      {"clone", {{{3, 4}}}, [](const auto& x) { return x[0].clone(); }},
      {"contiguous of a transposed view", {{{3, 4}}}, [](const auto& x) { return transpose(x[0], 0, 1).contiguous(); }},
      {"contiguous (already)", {{{3, 4}}}, [](const auto& x) { return x[0].contiguous() * 2.0; }},
      // Float32 has ~7 digits: a larger step keeps the difference quotient's rounding error small.
      {"to(Float32) round trip", {{{3, 4}}}, [](const auto& x) { return x[0].to(DType::Float32).to(DType::Float64); },
       1e-3, 1e-3, 1e-3},
      {"to(Float32) then exp", {{{3, 4}}}, [](const auto& x) { return exp(x[0].to(DType::Float32)).to(DType::Float64); },
       1e-3, 1e-2, 1e-2},
      {"to(cpu)", {{{3, 4}}}, [](const auto& x) { return x[0].to(Device::cpu()) * 3.0; }},
      {"add_ on a non-leaf", {{{3, 4}}, {{3, 4}}},
       [](const auto& x) {
         Tensor y = x[0] * 2.0;  // mul saves its inputs, not y, so y may change in place
         y.add_(x[1]);
         return y * y;
       }},
      {"add_ with alpha and broadcast other", {{{3, 4}}, {{4}}},
       [](const auto& x) {
         Tensor y = x[0] * 2.0;
         y.add_(x[1], -1.5);
         return sin(y);
       }},
      {"mul_ tensor on a non-leaf", {{{3, 4}}, {{3, 4}}},
       [](const auto& x) {
         Tensor y = x[0].clone();
         y.mul_(x[1]);
         return y * x[0];
       }},
      {"mul_ broadcast other", {{{3, 4}}, {{3, 1}}},
       [](const auto& x) {
         Tensor y = x[0] - 0.5;
         y.mul_(x[1]);
         return y;
       }},
      {"mul_ scalar", {{{3, 4}}},
       [](const auto& x) {
         Tensor y = x[0] * x[0];
         y.mul_(-2.5);
         return y;
       }},
      {"fill_ cuts the gradient of the old value", {{{3, 4}}, {{3, 4}}},
       [](const auto& x) {
         Tensor y = x[0] * 1.0;
         y.fill_(2.0);
         return y * x[1];
       }},
      {"zero_", {{{3, 4}}, {{3, 4}}},
       [](const auto& x) {
         Tensor y = x[0] + x[1];
         y.zero_();
         return y + x[1];
       }},
      {"copy_ broadcast src", {{{3, 4}}, {{4}}},
       [](const auto& x) {
         Tensor y = x[0] + 1.0;
         y.copy_(x[1]);
         return y * y;
       }},
  });
}

TEST_CASE("gradcheck: composites (many ops in one graph)") {
  const Tensor labels = from_vector(std::vector<std::int64_t>{2, 0, 1}, {3});
  check_cases({
      {"layer norm by hand", {{{3, 5}}, {{5}}, {{5}}},
       [](const auto& x) {
         const Tensor mu = mean(x[0], {-1}, true);
         const Tensor v = var(x[0], {-1}, false, true);
         return (x[0] - mu) * rsqrt(v + 1e-5) * x[1] + x[2];
       }},
      {"attention softmax(q k^T / sqrt d) v, causal", {{{2, 4, 3}}, {{2, 4, 3}}, {{2, 4, 3}}},
       [](const auto& x) {
         const Tensor s = matmul(x[0], transpose(x[1], -1, -2)) / std::sqrt(3.0);
         const Tensor future = gt(triu(ones({4, 4}), 1), scalar_tensor(0.0));
         return matmul(softmax(masked_fill(s, future, -1e4), -1), x[2]);
       }},
      {"cross-entropy via log_softmax and gather", {{{3, 4}}},
       [labels](const auto& x) {
         const Tensor lp = log_softmax(x[0], -1);
         return -mean(gather(lp, 1, unsqueeze(labels, 1)));
       }},
      {"two-layer MLP with gelu", {{{4, 3}}, {{3, 6}}, {{6}}, {{6, 2}}},
       [](const auto& x) { return matmul(gelu(matmul(x[0], x[1]) + x[2]), x[3]); }},
      {"elementwise on transposed and expanded views", {{{3, 4}}, {{4, 1}}},
       [](const auto& x) { return sigmoid(transpose(x[0], 0, 1)) * expand(x[1], {4, 3}) + permute(x[0], {1, 0}); }},
      {"split heads: view, permute, matmul, merge", {{{2, 6}}, {{6, 6}}},
       [](const auto& x) {
         const Tensor h = permute(view(matmul(x[0], x[1]), {2, 2, 3}), {1, 0, 2});  // [heads, T, d]
         const Tensor a = softmax(matmul(h, transpose(h, 1, 2)), -1);
         return reshape(permute(matmul(a, h), {1, 0, 2}), {2, 6});
       }},
  });
}
