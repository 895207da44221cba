/// \file
/// \brief Making tensors: constants, ranges, the identity, random tensors (Philox, seeded) and tensors
/// from C++ values.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "core/philox.h"
#include "core/tensor.h"

namespace ember {

/// Uninitialised contiguous tensor.
Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
/// All zeros.
Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
/// All ones.
Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
/// Every element equal to `value`.
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32, Device device = Device::cpu());
/// Zeros with x's shape, dtype and device.
Tensor zeros_like(const Tensor& x);
/// Ones with x's shape, dtype and device.
Tensor ones_like(const Tensor& x);
/// A zero-dimensional tensor holding `value`.
Tensor scalar_tensor(double value, DType dtype = DType::Float32, Device device = Device::cpu());
/// start, start + step, ... below end (1-D; Int64 unless dtype says otherwise).
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::Int64,
              Device device = Device::cpu());
/// arange(0, end).
Tensor arange(double end, DType dtype = DType::Int64, Device device = Device::cpu());
/// `steps` evenly spaced values from start to end inclusive.
Tensor linspace(double start, double end, std::int64_t steps, DType dtype = DType::Float32,
                Device device = Device::cpu());
/// n x m identity (m = n when m < 0).
Tensor eye(std::int64_t n, std::int64_t m = -1, DType dtype = DType::Float32, Device device = Device::cpu());

/// Uniform on [low, high).
Tensor rand(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu(), double low = 0.0,
            double high = 1.0, Generator* gen = nullptr);
/// Normal with mean and std.
Tensor randn(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu(), double mean = 0.0,
             double std = 1.0, Generator* gen = nullptr);
/// Integers uniform on [low, high) (Int64 by default).
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, DType dtype = DType::Int64,
               Device device = Device::cpu(), Generator* gen = nullptr);
/// 1 with probability p[i], else 0 (same shape and dtype as p).
Tensor bernoulli(const Tensor& p, Generator* gen = nullptr);
/// 1 with probability p, else 0.
Tensor bernoulli(const Shape& shape, double p, DType dtype = DType::Float32, Device device = Device::cpu(),
                 Generator* gen = nullptr);

/// A tensor of `shape` holding `values` (row-major), converted to dtype.
Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::Float32);
/// A tensor of `shape` holding Int64 `values`.
Tensor from_vector(const std::vector<std::int64_t>& values, const Shape& shape);
/// A 1-D Float32 tensor (or `dtype`).
Tensor tensor(std::initializer_list<double> values, DType dtype = DType::Float32);
/// A 2-D Float32 tensor from rows of equal length (or `dtype`).
Tensor tensor(std::initializer_list<std::initializer_list<double>> rows, DType dtype = DType::Float32);

}  // namespace ember
