/// \file
/// \brief Writes the fuzzer's seed corpus: small valid safetensors files covering every dtype, scalars,
/// zero-size tensors, several tensors and metadata. Usage: make_corpus DIR
#include <cstdio>
#include <fstream>
#include <string>

#include "core/creation.h"
#include "core/safetensors.h"

namespace st = ember::safetensors;

namespace {

void write(const std::string& dir, const std::string& name, const st::TensorList& tensors,
           const st::Metadata& metadata = {}) {
  const std::vector<std::uint8_t> bytes = st::serialize(tensors, metadata);
  std::ofstream(dir + "/" + name, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  using ember::DType;
  using ember::from_vector;
  const std::string dir = argv[1];
  const std::vector<double> v = {1.5, -2, 0, 3};
  write(dir, "f32", {{"w", from_vector(v, {2, 2}, DType::Float32)}});
  write(dir, "f64", {{"w", from_vector(v, {4}, DType::Float64)}});
  write(dir, "f16", {{"h", from_vector(v, {1, 4}, DType::Float16)}});
  write(dir, "bf16", {{"b", from_vector(v, {4, 1}, DType::BFloat16)}});
  write(dir, "i64", {{"i", from_vector(std::vector<std::int64_t>{-1, 2, 3}, {3})}});
  write(dir, "bool", {{"m", from_vector({1, 0, 1}, {3}, DType::Bool)}});
  write(dir, "scalar", {{"s", from_vector(std::vector<double>{2.5}, {})}});
  write(dir, "empty", {{"e", ember::zeros({0, 3})}, {"z", ember::zeros({2, 0})}});
  write(dir, "empty_file", {});
  write(dir, "mixed",
        {{"layers.0.weight", from_vector(v, {2, 2})},
         {"layers.0.bias", from_vector({1, 2}, {2}, DType::Float16)},
         {"step", from_vector(std::vector<std::int64_t>{7}, {})}},
        {{"format", "pt"}, {"note", "seed"}});
  return 0;
}
