/// \file
/// \brief Misuse never crashes: each case throws ember::Error whose message names the op and the
/// shapes (or dims, dtypes, devices) involved, as DESIGN.md section 2 promises.
#include <stdexcept>

#include "reference.h"

using namespace ember;

TEST_CASE("shape errors name the op and both shapes") {
  CHECK_THROWS_EMBER(matmul(zeros({2, 3}), zeros({4, 5})), "matmul: cannot multiply [2, 3] by [4, 5] (3 != 4)");
  CHECK_THROWS_EMBER(add(zeros({2, 3}), zeros({4})), "add: shapes [2, 3] and [4] do not broadcast (dim 1: 3 vs 4)");
  CHECK_THROWS_EMBER(view(transpose(zeros({2, 3}), 0, 1), {6}),
                     "view: cannot view a tensor of shape [3, 2] and strides [1, 3] as [6] without a copy");
  CHECK_THROWS_EMBER(reshape(zeros({2, 3}), {4}), "reshape: shape [4] is invalid for 6 elements");
  CHECK_THROWS_EMBER(reshape(zeros({2, 3}), {-1, 4}), "reshape: shape [-1, 4] is invalid for 6 elements");
  CHECK_THROWS_EMBER(view(zeros({2, 3}), {-1, -1}), "view: only one dim can be -1 in [-1, -1]");
  CHECK_THROWS_EMBER(expand(zeros({2, 3}), {4, 3}), "expand: cannot expand [2, 3] to [4, 3] (dim 0: 2 vs 4)");
  CHECK_THROWS_EMBER(expand(zeros({2, 3}), {3}), "expand: cannot expand [2, 3] to [3]");
  CHECK_THROWS_EMBER(permute(zeros({2, 3, 4}), {1, 0}), "permute: 2 dims given for a tensor of shape [2, 3, 4]");
  CHECK_THROWS_EMBER(permute(zeros({2, 3}), {1, 1}), "permute: dim 1 repeated in [1, 1]");
  CHECK_THROWS_EMBER(cat({zeros({2, 3}), zeros({2, 4})}, 0), "cat: shapes [2, 3] and [2, 4] differ in dim 1");
  CHECK_THROWS_EMBER(select(zeros({3, 4}), 0, 3), "select: index 3 is out of range for dim 0 of shape [3, 4]");
  CHECK_THROWS_EMBER(flatten(zeros({2, 3, 4}), 2, 1), "flatten: start dim 2 is after end dim 1 for shape [2, 3, 4]");
  CHECK_THROWS_EMBER(max(zeros({0, 3}), {0}), "max: cannot reduce the empty dim 0 of shape [0, 3]");
  CHECK_THROWS_EMBER(argmax(zeros({0}), 0), "argmax: empty tensor of shape [0]");
  NoGradGuard no_grad;
  Tensor x = zeros({2, 3});
  CHECK_THROWS_EMBER(x.copy_(zeros({4})), "copy_: shapes [2, 3] and [4] do not broadcast");
  Tensor y = zeros({3});
  CHECK_THROWS_EMBER(y.copy_(zeros({2, 3})), "copy_: cannot copy [2, 3] into [3]");
  CHECK_THROWS_EMBER(x.add_(zeros({3, 3})), "add: shapes [2, 3] and [3, 3] do not broadcast");
}

TEST_CASE("dim out of range names the op, the dim and the rank") {
  const Tensor x = zeros({2, 3});
  CHECK_THROWS_EMBER(sum(x, {2}), "sum: dim 2 is out of range for a tensor of 2 dims (expected -2..1)");
  CHECK_THROWS_EMBER(mean(x, {-3}), "mean: dim -3 is out of range for a tensor of 2 dims");
  CHECK_THROWS_EMBER(softmax(x, 2), "softmax: dim 2 is out of range for a tensor of 2 dims");
  CHECK_THROWS_EMBER(log_softmax(x, -3), "log_softmax: dim -3 is out of range");
  CHECK_THROWS_EMBER(transpose(x, 0, 5), "transpose: dim 5 is out of range for a tensor of 2 dims");
  CHECK_THROWS_EMBER(argmax(x, 2), "argmax: dim 2 is out of range");
  CHECK_THROWS_EMBER(cumsum(x, 3), "cumsum: dim 3 is out of range");
  CHECK_THROWS_EMBER(unsqueeze(x, 4), "unsqueeze: dim 4 is out of range for a tensor of 3 dims");
  CHECK_THROWS_EMBER(cat({x, x}, 2), "cat: dim 2 is out of range");
  CHECK_THROWS_EMBER(x.size(2), "size: dim 2 is out of range for a tensor of 2 dims");
  CHECK_THROWS_EMBER(sum(x, {0, -2}), "sum: dim listed twice in [0, -2]");
  CHECK_THROWS_EMBER(sum(scalar_tensor(1.0), {1}),
                     "sum: dim 1 is out of range for a tensor of 0 dims (expected -1..0)");
}

TEST_CASE("undefined tensors are rejected by name, never dereferenced") {
  const Tensor u;
  CHECK_THROWS_EMBER(add(u, ones({2})), "add: got an undefined tensor");
  CHECK_THROWS_EMBER(ones({2}) * u, "mul: got an undefined tensor");
  CHECK_THROWS_EMBER(exp(u), "exp: got an undefined tensor");
  CHECK_THROWS_EMBER(relu(u), "relu: got an undefined tensor");
  CHECK_THROWS_EMBER(sum(u), "sum: got an undefined tensor");
  CHECK_THROWS_EMBER(matmul(u, ones({2, 2})), "matmul: got an undefined tensor");
  CHECK_THROWS_EMBER(softmax(u, 0), "softmax: got an undefined tensor");
  CHECK_THROWS_EMBER(cat({ones({2}), u}, 0), "cat: got an undefined tensor");
  CHECK_THROWS_EMBER(reshape(u, {2}), "reshape: got an undefined tensor");
  CHECK_THROWS_EMBER(u.shape(), "tensor: use of an undefined tensor");
  CHECK_THROWS_EMBER(u.item(), "undefined tensor");
  CHECK_THROWS_EMBER(u.clone(), "clone: got an undefined tensor");
}

TEST_CASE("item, data_ptr and dtype misuse") {
  CHECK_THROWS_EMBER(zeros({2, 3}).item(), "item: tensor of shape [2, 3] has 6 elements, not 1");
  CHECK_THROWS_EMBER(zeros({0}).item(), "item: tensor of shape [0] has 0 elements, not 1");
  CHECK_THROWS_EMBER(zeros({2}).data_ptr<double>(),
                     "data_ptr: tensor of shape [2] has dtype float32, asked for float64");
  CHECK_THROWS_EMBER(zeros({2}, DType::Int64).data_ptr<float>(),
                     "data_ptr: tensor of shape [2] has dtype int64, asked for float32");
  CHECK_THROWS_EMBER(matmul(zeros({2, 3}), zeros({3, 2}, DType::Float64)),
                     "matmul: dtypes differ ([2, 3] float32 and [3, 2] float64)");
  CHECK_THROWS_EMBER(where(zeros({2}), zeros({2}), zeros({2})),
                     "where: condition must be bool, got float32 of shape [2]");
  CHECK_THROWS_EMBER(index_select(zeros({3}), 0, zeros({1})),
                     "index_select: indices must be int64, got float32 of shape [1]");
  CHECK_THROWS_EMBER(Tensor(zeros({2}, DType::Int64)).requires_grad_(),
                     "requires_grad_: only floating-point tensors can require grad, not int64");
  CHECK_THROWS_EMBER(rand({2}, DType::Int64), "rand: needs a floating dtype, got int64");
}

TEST_CASE("a CUDA device without a GPU throws ember::Error instead of crashing") {
  const Tensor x = ones({2});
  // Device 99 never exists, whatever the machine.
  CHECK_THROWS_EMBER(x.to(Device::cuda(99)), "cuda:99");
  CHECK_THROWS_EMBER(zeros({2}, DType::Float32, Device::cuda(99)), "cuda:99");
  if (cuda_device_count() == 0) {
    CHECK_THROWS_AS(x.to(Device::cuda()), Error);
    CHECK_THROWS_EMBER(zeros({2}, DType::Float32, Device::cuda()), "cuda:0");
    CHECK_THROWS_EMBER(randn({2}, DType::Float32, Device::cuda()), "cuda:0");
  } else {
    MESSAGE("a CUDA device is visible: checking the round trip instead");
    test::check_exact(x.to(Device::cuda()).to(Device::cpu()), {2}, {1, 1});
  }
}

TEST_CASE("misuse of in-place ops, gradients, threads and argument ranges") {
  Tensor leaf = zeros({2});
  leaf.requires_grad_();
  CHECK_THROWS_EMBER(leaf.add_(ones({2})),
                     "add_: a leaf tensor of shape [2] that requires grad cannot be modified in place");
  CHECK_THROWS_EMBER(leaf.fill_(1), "fill_: a leaf tensor of shape [2] that requires grad");
  CHECK_THROWS_EMBER(leaf.set_grad(zeros({3})), "set_grad: gradient of shape [3] for a tensor of shape [2]");
  CHECK_THROWS_EMBER(set_num_threads(0), "set_num_threads: need at least 1 thread, got 0");
  CHECK_THROWS_EMBER(slice(zeros({4}), 0, 0, 4, 0), "slice: step must be positive, got 0");
  CHECK_THROWS_EMBER(split(zeros({4}), 0), "split: size must be positive, got 0");
  CHECK_THROWS_EMBER(chunk(zeros({4}), 0), "chunk: number of chunks must be positive, got 0");
  CHECK_THROWS_EMBER(norm(zeros({4}), 0.5), "norm: p must be finite and >= 1, got 0.5");
  CHECK_THROWS_EMBER(pad(zeros({2, 3}), {1, 1, 1, 1, 1, 1}),
                     "pad: 6 padding values for a tensor of shape [2, 3] (need an even count, at most 2 per dim)");
  CHECK_THROWS_EMBER(matmul(zeros({2, 2}, DType::Bool), zeros({2, 2}, DType::Bool)),
                     "matmul: bool tensors cannot be multiplied");
  // Every ember::Error is a std::runtime_error.
  CHECK_THROWS_AS(add(zeros({2}), zeros({3})), std::runtime_error);
}
