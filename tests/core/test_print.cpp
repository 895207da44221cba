/// \file
/// \brief Tensor::str() against exact strings written out by hand from the format of core/print.cpp:
/// PyTorch's layout (right-aligned columns, 4 decimals, "1." for whole floats, scientific notation for
/// wide ranges, "..." past 1000 elements keeping 3 at each end) followed by shape, dtype and device.
#include <sstream>

#include "reference.h"

using namespace ember;

TEST_CASE("str: a small float matrix with aligned columns") {
  CHECK(tensor({{1.5, -2.25}, {3, 4.125}}).str() ==
        "tensor([[ 1.5000, -2.2500],\n"
        "        [ 3.0000,  4.1250]], shape=[2, 2], dtype=float32, device=cpu)");
  CHECK(tensor({-1.5, 10.25}).str() == "tensor([-1.5000, 10.2500], shape=[2], dtype=float32, device=cpu)");
  CHECK(tensor({1, 2, 3}).str() == "tensor([1., 2., 3.], shape=[3], dtype=float32, device=cpu)");
  CHECK(tensor({1, -20, 300}, DType::Float64).str() ==
        "tensor([  1., -20., 300.], shape=[3], dtype=float64, device=cpu)");
  CHECK(tensor({0.1, 1}, DType::Float16).str() == "tensor([0.1000, 1.0000], shape=[2], dtype=float16, device=cpu)");
}

TEST_CASE("str: int64, bool, scalar, empty and undefined tensors") {
  CHECK(tensor({1, -20, 300}, DType::Int64).str() == "tensor([  1, -20, 300], shape=[3], dtype=int64, device=cpu)");
  CHECK(tensor({1, 0, 1}, DType::Bool).str() == "tensor([ True, False,  True], shape=[3], dtype=bool, device=cpu)");
  CHECK(scalar_tensor(3.5).str() == "tensor(3.5000, shape=[], dtype=float32, device=cpu)");
  CHECK(scalar_tensor(2).str() == "tensor(2., shape=[], dtype=float32, device=cpu)");
  CHECK(scalar_tensor(-7, DType::Int64).str() == "tensor(-7, shape=[], dtype=int64, device=cpu)");
  CHECK(zeros({0}).str() == "tensor([], shape=[0], dtype=float32, device=cpu)");
  CHECK(Tensor().str() == "tensor(undefined)");
}

TEST_CASE("str: scientific notation, nan and inf") {
  CHECK(tensor({1e-5, 1}).str() == "tensor([1.0000e-05, 1.0000e+00], shape=[2], dtype=float32, device=cpu)");
  CHECK(tensor({-1e-5, 1}).str() == "tensor([-1.0000e-05,  1.0000e+00], shape=[2], dtype=float32, device=cpu)");
  CHECK(tensor({1e9, 1}).str() == "tensor([1.0000e+09, 1.0000e+00], shape=[2], dtype=float32, device=cpu)");
  CHECK(tensor({0.5, 1000.5}).str() == "tensor([5.0000e-01, 1.0005e+03], shape=[2], dtype=float32, device=cpu)");
  CHECK(tensor({1.5, NAN, INFINITY, -INFINITY}).str() ==
        "tensor([1.5000,    nan,    inf,   -inf], shape=[4], dtype=float32, device=cpu)");
}

TEST_CASE("str: nested brackets for 3-D and the logical order of a transposed view") {
  CHECK(reshape(arange(8), {2, 2, 2}).str() ==
        "tensor([[[0, 1],\n"
        "         [2, 3]],\n"
        "\n"
        "        [[4, 5],\n"
        "         [6, 7]]], shape=[2, 2, 2], dtype=int64, device=cpu)");
  CHECK(transpose(tensor({{1, 2}, {3, 4}}, DType::Int64), 0, 1).str() ==
        "tensor([[1, 3],\n"
        "        [2, 4]], shape=[2, 2], dtype=int64, device=cpu)");
}

TEST_CASE("str: tensors over 1000 elements are elided with ...") {
  CHECK(arange(2000).str() ==
        "tensor([   0,    1,    2, ..., 1997, 1998, 1999], shape=[2000], dtype=int64, device=cpu)");
  CHECK(reshape(arange(2000, DType::Float32), {40, 50}).str() ==
        "tensor([[   0.,    1.,    2., ...,   47.,   48.,   49.],\n"
        "        [  50.,   51.,   52., ...,   97.,   98.,   99.],\n"
        "        [ 100.,  101.,  102., ...,  147.,  148.,  149.],\n"
        "        ...,\n"
        "        [1850., 1851., 1852., ..., 1897., 1898., 1899.],\n"
        "        [1900., 1901., 1902., ..., 1947., 1948., 1949.],\n"
        "        [1950., 1951., 1952., ..., 1997., 1998., 1999.]], shape=[40, 50], dtype=float32, device=cpu)");
  // Exactly 1000 elements are printed in full.
  const std::string full = arange(1000).str();
  CHECK(full.find("...") == std::string::npos);
  CHECK(full.find(" 999]") != std::string::npos);
}

TEST_CASE("str: requires_grad is shown, and operator<< prints str()") {
  Tensor x = ones({2});
  x.requires_grad_();
  CHECK(x.str() == "tensor([1., 1.], shape=[2], dtype=float32, device=cpu, requires_grad=true)");
  std::ostringstream os;
  os << tensor({2.5});
  CHECK(os.str() == "tensor([2.5000], shape=[1], dtype=float32, device=cpu)");
}
