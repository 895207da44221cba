/// \file
/// \brief safetensors against hand-built bytes: the exact bytes serialize() must produce for a tiny
/// file, a file laid out as the Python package writes it, round trips of every dtype (scalars and
/// zero-size tensors included), and one test per kind of bad file, each checking the error text.
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "core/safetensors.h"
#include "helpers.h"

namespace fs = std::filesystem;
using namespace ember;
using ember::test::TempDir;
namespace st = ember::safetensors;

namespace {

using Bytes = std::vector<std::uint8_t>;

/// `v` as 8 little-endian bytes, by shifting (independent of the host's byte order and of memcpy).
Bytes le64(std::uint64_t v) {
  Bytes b;
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  return b;
}

/// A file: the declared header length (the header's own length unless given), the header, the data.
Bytes file_of(const std::string& header, const Bytes& data = {}, std::optional<std::uint64_t> declared = {}) {
  Bytes f = le64(declared.value_or(header.size()));
  f.insert(f.end(), header.begin(), header.end());
  f.insert(f.end(), data.begin(), data.end());
  return f;
}

st::Contents parse_bytes(const Bytes& f) { return st::parse(f.data(), f.size(), "mem.safetensors"); }

/// parse() of a file with this header and `data_bytes` zero bytes of data.
st::Contents parse_header(const std::string& header, std::size_t data_bytes = 0) {
  return parse_bytes(file_of(header, Bytes(data_bytes, 0)));
}

Bytes slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Checks dtype, shape and values (compared as doubles, exactly).
void check_tensor(const Tensor& t, DType dtype, const Shape& shape, const std::vector<double>& values) {
  CHECK(t.dtype() == dtype);
  CHECK(t.shape() == shape);
  if (t.numel() > 0) CHECK(t.is_contiguous());  // core calls some zero-size shapes non-contiguous
  CHECK(t.device().is_cpu());
  CHECK(t.to_vector<double>() == values);
}

}  // namespace

// --- the exact format ---

TEST_CASE("safetensors: serialize produces the bytes of a hand-written file") {
  const st::TensorList tensors = {{"b", from_vector(std::vector<double>{1.0, -2.0}, {2})},
                                  {"a", from_vector(std::vector<std::int64_t>{7}, {})}};
  // 138 characters of JSON + 6 spaces: 8 + 144 = 152 is a multiple of 8.
  const std::string header = R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("a":{"dtype":"I64","shape":[],"data_offsets":[8,16]}})"
                             "      ";
  Bytes want = {144, 0, 0, 0, 0, 0, 0, 0};
  want.insert(want.end(), header.begin(), header.end());
  const Bytes data = {0x00, 0x00, 0x80, 0x3f,               // 1.0f
                      0x00, 0x00, 0x00, 0xc0,               // -2.0f
                      7,    0,    0,    0,    0, 0, 0, 0};  // int64 7
  want.insert(want.end(), data.begin(), data.end());
  REQUIRE(want.size() == 168);
  CHECK(st::serialize(tensors, {{"format", "pt"}}) == want);
}

TEST_CASE("safetensors: serialize pads the header with spaces and omits empty metadata") {
  // {"x":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}} is 55 characters: one space makes 56.
  const Bytes got = st::serialize({{"x", from_vector(std::vector<double>{1}, {1}, DType::Bool)}});
  const std::string want_header = R"({"x":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}} )";
  REQUIRE(got.size() == 8 + 56 + 1);
  CHECK(Bytes(got.begin(), got.begin() + 8) == Bytes{56, 0, 0, 0, 0, 0, 0, 0});
  CHECK(std::string(got.begin() + 8, got.begin() + 64) == want_header);
  CHECK(got.back() == 1);
}

TEST_CASE("safetensors: parse a file laid out as the Python package writes it") {
  // Keys in a different order from the data, metadata first, header padded with spaces to 152.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"bias":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},)"
      R"("weight":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}}  )";
  REQUIRE(header.size() == 152);
  const Bytes data = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0xff, 0x7b,  // F16 1, -2, 0.5, 65504
                      0x80, 0x3f, 0x49, 0x40};                         // BF16 1, 3.140625
  const st::Contents c = parse_bytes(file_of(header, data));
  REQUIRE(c.tensors.size() == 2);
  CHECK(c.tensors[0].first == "weight");  // in data order
  CHECK(c.tensors[1].first == "bias");
  check_tensor(c.at("weight"), DType::Float16, {2, 2}, {1, -2, 0.5, 65504});
  check_tensor(c.at("bias"), DType::BFloat16, {2}, {1, 3.140625});
  CHECK(c.metadata == st::Metadata{{"format", "pt"}});
  CHECK(c.contains("bias"));
  CHECK_FALSE(c.contains("Bias"));
  CHECK_THROWS_EMBER(c.at("w"), "no tensor named \"w\" (the file has: weight, bias)");
}

TEST_CASE("safetensors: an unpadded header, null metadata, extra fields and bool bytes other than 0 and 1") {
  const std::string header =
      R"({"m":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4],"extra":[1]},"__metadata__":null})";
  const st::Contents c = parse_bytes(file_of(header, {0, 1, 2, 255}));
  check_tensor(c.at("m"), DType::Bool, {4}, {0, 1, 1, 1});  // NumPy reads any non-zero byte as true
  CHECK(c.metadata.empty());
}

TEST_CASE("safetensors: an empty file list and zero-size tensors sharing an offset") {
  CHECK(parse_header("{}").tensors.empty());
  CHECK(parse_header("{}  ").tensors.empty());
  const std::string header = R"({"e2":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                             R"("x":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                             R"("e1":{"dtype":"I64","shape":[3,0],"data_offsets":[4,4]}})";
  const st::Contents c = parse_header(header, 4);
  REQUIRE(c.tensors.size() == 3);
  CHECK(c.tensors[0].first == "x");
  CHECK(c.tensors[1].first == "e2");  // equal offsets keep the file's order
  CHECK(c.tensors[2].first == "e1");
  check_tensor(c.at("e1"), DType::Int64, {3, 0}, {});
  check_tensor(c.at("x"), DType::Float32, {}, {0});
}

// --- round trips ---

TEST_CASE("safetensors: every dtype, scalars and zero-size tensors round trip through a file") {
  TempDir dir("ember-st");
  const double f16_subnormal = 5.9604644775390625e-08;  // 2^-24
  const std::int64_t lo = std::numeric_limits<std::int64_t>::min(), hi = std::numeric_limits<std::int64_t>::max();
  const st::TensorList tensors = {
      {"f32", from_vector(std::vector<double>{1.5, -2, 3.25, 0, 0.125, -1024}, {2, 3}, DType::Float32)},
      {"f64", from_vector(std::vector<double>{0.1, -1e300, 5e-324}, {3}, DType::Float64)},
      {"f16", from_vector(std::vector<double>{1, -2, 0.5, 65504, f16_subnormal}, {5}, DType::Float16)},
      {"bf16", from_vector(std::vector<double>{1, 3.140625, -0.0078125}, {3, 1}, DType::BFloat16)},
      {"i64", from_vector(std::vector<std::int64_t>{lo, -1, 0, hi}, {2, 2})},
      {"bool", from_vector(std::vector<double>{1, 0, 1}, {3}, DType::Bool)},
      {"scalar", from_vector(std::vector<double>{2.5}, {}, DType::Float32)},
      {"scalar_i64", from_vector(std::vector<std::int64_t>{-9}, {})},
      {"empty", zeros({0, 3})},
      {"empty_f16", zeros({2, 0, 4}, DType::Float16)},
  };
  const st::Metadata meta = {{"step", "120"}, {"note", "héllo \"quoted\"\n"}, {"", ""}};
  st::save(dir / "all.safetensors", tensors, meta);
  CHECK(slurp(dir / "all.safetensors") == st::serialize(tensors, meta));
  for (const st::Contents& c : {st::load(dir / "all.safetensors"), parse_bytes(st::serialize(tensors, meta))}) {
    REQUIRE(c.tensors.size() == tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) CHECK(c.tensors[i].first == tensors[i].first);
    CHECK(c.metadata == meta);
    check_tensor(c.at("f32"), DType::Float32, {2, 3}, {1.5, -2, 3.25, 0, 0.125, -1024});
    check_tensor(c.at("f64"), DType::Float64, {3}, {0.1, -1e300, 5e-324});
    check_tensor(c.at("f16"), DType::Float16, {5}, {1, -2, 0.5, 65504, f16_subnormal});
    check_tensor(c.at("bf16"), DType::BFloat16, {3, 1}, {1, 3.140625, -0.0078125});
    CHECK(c.at("i64").dtype() == DType::Int64);
    CHECK(c.at("i64").to_vector<std::int64_t>() == std::vector<std::int64_t>{lo, -1, 0, hi});
    check_tensor(c.at("bool"), DType::Bool, {3}, {1, 0, 1});
    check_tensor(c.at("scalar"), DType::Float32, {}, {2.5});
    check_tensor(c.at("scalar_i64"), DType::Int64, {}, {-9});
    check_tensor(c.at("empty"), DType::Float32, {0, 3}, {});
    check_tensor(c.at("empty_f16"), DType::Float16, {2, 0, 4}, {});
  }
}

TEST_CASE("safetensors: non-contiguous tensors are written in row-major order") {
  const Tensor base = from_vector(std::vector<double>{0, 1, 2, 3, 4, 5}, {2, 3});
  const Tensor t = transpose(base, 0, 1);  // [3, 2]: rows (0, 3), (1, 4), (2, 5)
  REQUIRE_FALSE(t.is_contiguous());
  const st::Contents c = parse_bytes(st::serialize({{"t", t}, {"col", select(base, 1, 1)}}));
  check_tensor(c.at("t"), DType::Float32, {3, 2}, {0, 3, 1, 4, 2, 5});
  check_tensor(c.at("col"), DType::Float32, {2}, {1, 4});
}

TEST_CASE("safetensors: serialize rejects bad names and undefined tensors") {
  const Tensor x = zeros({1});
  CHECK_THROWS_EMBER(st::serialize({{"a", x}, {"b", x}, {"a", x}}),
                     "safetensors: serialize: the name \"a\" appears twice");
  CHECK_THROWS_EMBER(st::serialize({{"", x}}), "safetensors: serialize: a tensor name is empty");
  CHECK_THROWS_EMBER(st::serialize({{"__metadata__", x}}), "\"__metadata__\" is reserved");
  CHECK_THROWS_EMBER(st::serialize({{"u", Tensor()}}), "tensor \"u\" is undefined");
  CHECK_THROWS_EMBER(st::serialize({{"bad\xff", x}}), "not valid UTF-8");
}

TEST_CASE("safetensors: load reports missing, unreadable and truncated files") {
  TempDir dir("ember-st");
  const std::string missing = dir / "missing.safetensors";
  CHECK_THROWS_EMBER(st::load(missing),
                     ("safetensors: " + missing + ": cannot open: No such file or directory").c_str());
  CHECK_THROWS_EMBER(st::load(dir.path.string()), ("safetensors: " + dir.path.string() + ": cannot read").c_str());
  Bytes f = st::serialize({{"w", zeros({4})}});
  f.pop_back();
  std::ofstream(dir / "cut", std::ios::binary).write(reinterpret_cast<const char*>(f.data()), f.size());
  CHECK_THROWS_EMBER(
      st::load(dir / "cut"),
      ("safetensors: " + (dir / "cut") + ": tensor \"w\": data_offsets [0, 16] run past the end of the data (15 bytes)")
          .c_str());
  std::ofstream(dir / "tiny", std::ios::binary) << "abc";
  CHECK_THROWS_EMBER(st::load(dir / "tiny"), "file is 3 bytes, too short for the 8-byte header length");
}

// --- bad files, one kind per test ---

TEST_CASE("safetensors bad file: shorter than 8 bytes") {
  CHECK_THROWS_EMBER(parse_bytes({}), "safetensors: mem.safetensors: file is 0 bytes, too short");
  CHECK_THROWS_EMBER(parse_bytes({1, 0, 0, 0, 0, 0, 0}), "safetensors: mem.safetensors: file is 7 bytes, too short");
}

TEST_CASE("safetensors bad file: header length past the end of the file") {
  CHECK_THROWS_EMBER(parse_bytes(file_of("{}", {}, 3)), "header length 3 runs past the end of the file (10 bytes)");
  CHECK_THROWS_EMBER(parse_bytes(le64(1)), "header length 1 runs past the end of the file (8 bytes)");
  CHECK_THROWS_EMBER(parse_bytes(file_of("{}", {}, ~0ull)), "header length 18446744073709551615 exceeds the limit");
}

TEST_CASE("safetensors bad file: header over 100 MB") {
  CHECK_THROWS_EMBER(parse_bytes(file_of("{}", {}, 100'000'001)),
                     "safetensors: mem.safetensors: header length 100000001 exceeds the limit of 100000000 bytes");
  // Exactly the limit is allowed, so the file's size is what rejects it.
  CHECK_THROWS_EMBER(parse_bytes(file_of("{}", {}, 100'000'000)), "header length 100000000 runs past the end");
}

TEST_CASE("safetensors bad file: invalid JSON") {
  CHECK_THROWS_EMBER(parse_header(R"({"a": )"), "safetensors: mem.safetensors: header is not valid JSON");
  CHECK_THROWS_EMBER(parse_header(""), "header is not valid JSON");
  CHECK_THROWS_EMBER(parse_header(std::string("{}\0\0", 4)), "header is not valid JSON (NUL byte at offset 2)");
  CHECK_THROWS_EMBER(parse_header("{\"\xff\":1}"), "header is not valid JSON");  // not UTF-8
  CHECK_THROWS_EMBER(parse_header(std::string(100000, '[') + std::string(100000, ']')), "header is an array");
}

TEST_CASE("safetensors bad file: JSON that is not an object") {
  CHECK_THROWS_EMBER(parse_header("[1, 2]"), "safetensors: mem.safetensors: header is an array, not a JSON object");
  CHECK_THROWS_EMBER(parse_header("\"x\""), "header is a string, not a JSON object");
  CHECK_THROWS_EMBER(parse_header("42"), "header is an integer, not a JSON object");
}

TEST_CASE("safetensors bad file: an entry missing dtype, shape or data_offsets") {
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4),
                     "safetensors: mem.safetensors: tensor \"w\" has no \"dtype\"");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4), "tensor \"w\" has no \"shape\"");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":[1]}})", 4), "tensor \"w\" has no \"data_offsets\"");
}

TEST_CASE("safetensors bad file: entries with the wrong JSON types") {
  CHECK_THROWS_EMBER(parse_header(R"({"w":[1]})"), "entry \"w\" is an array, not an object");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4),
                     "tensor \"w\": \"dtype\" is an integer, not a string");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", 4),
                     "tensor \"w\": \"shape\" is a string, not an array of integers");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", 4),
                     "tensor \"w\": \"shape\" holds a floating-point number (1.0), not a non-negative integer");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":{"a":0}}})", 4),
                     "\"data_offsets\" is an object, not an array of integers");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,"4"]}})", 4),
                     "\"data_offsets\" holds a string (\"4\"), not a non-negative integer");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 4),
                     "tensor \"w\": \"data_offsets\" has 3 values, not 2");
}

TEST_CASE("safetensors bad file: unknown dtype") {
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}})", 4),
                     "safetensors: mem.safetensors: tensor \"w\" has unknown dtype \"I32\"");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4),
                     "unknown dtype \"f32\"");
}

TEST_CASE("safetensors bad file: negative or absurd shapes") {
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":[-1,2],"data_offsets":[0,4]}})", 4),
                     "\"shape\" holds a negative integer (-1), not a non-negative integer");
  // 2^32 * 2^32 = 2^64 elements: the product overflows.
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4),
                     "tensor \"w\" has shape [4294967296, 4294967296], whose element count overflows");
  // Overflow is caught even when a later dim is 0, as the Python package does.
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})"),
                     "whose element count overflows");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":[18446744073709551615,0],"data_offsets":[0,0]}})"),
                     "whose element count overflows");
  // 2^61 float32 elements are 2^63 bytes.
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,4]}})", 4),
                     "whose byte count overflows");
  // Large but representable: rejected by the size check, before anything is allocated.
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F64","shape":[1000000,1000000],"data_offsets":[0,8]}})", 8),
                     "data_offsets [0, 8] span 8 bytes, but F64 [1000000, 1000000] needs 8000000000000");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":[1e3],"data_offsets":[0,4000]}})", 4000),
                     "holds a floating-point number");
}

TEST_CASE("safetensors bad file: data_offsets that do not match numel * itemsize") {
  CHECK_THROWS_EMBER(
      parse_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
      "safetensors: mem.safetensors: tensor \"w\": data_offsets [0, 8] span 8 bytes, but F32 [3] needs 12");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"BF16","shape":[],"data_offsets":[0,0]}})"),
                     "span 0 bytes, but BF16 [] needs 2");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"I64","shape":[0],"data_offsets":[0,8]}})", 8),
                     "span 8 bytes, but I64 [0] needs 0");
}

TEST_CASE("safetensors bad file: data_offsets out of range") {
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
                     "tensor \"w\": data_offsets [0, 16] run past the end of the data (8 bytes)");
  CHECK_THROWS_EMBER(
      parse_header(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]}})"),
      "run past the end of the data (0 bytes)");
  CHECK_THROWS_EMBER(parse_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8),
                     "tensor \"w\" has data_offsets [8, 4] with end before begin");
}

TEST_CASE("safetensors bad file: overlapping tensors") {
  CHECK_THROWS_EMBER(
      parse_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                   R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                   12),
      "safetensors: mem.safetensors: tensor \"b\" (data_offsets [4, 12]) overlaps tensor \"a\" ([0, 8])");
  CHECK_THROWS_EMBER(parse_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                  R"("b":{"dtype":"I64","shape":[],"data_offsets":[0,8]}})",
                                  8),
                     "overlaps tensor \"a\" ([0, 4])");
}

TEST_CASE("safetensors bad file: holes between tensors") {
  CHECK_THROWS_EMBER(
      parse_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                   R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                   12),
      "safetensors: mem.safetensors: hole of 4 unused bytes in the data before tensor \"b\" at offset 8");
  CHECK_THROWS_EMBER(parse_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})", 6),
                     "hole of 2 unused bytes in the data before tensor \"a\" at offset 2");
}

TEST_CASE("safetensors bad file: trailing unused bytes") {
  CHECK_THROWS_EMBER(parse_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 7),
                     "safetensors: mem.safetensors: 3 unused bytes after the last tensor (the data section is 7 "
                     "bytes, tensors end at 4)");
  CHECK_THROWS_EMBER(parse_header("{}", 1), "1 unused bytes after the last tensor");
}

TEST_CASE("safetensors bad file: __metadata__ values that are not strings") {
  CHECK_THROWS_EMBER(parse_header(R"({"__metadata__":{"ok":"yes","step":3}})"),
                     "safetensors: mem.safetensors: __metadata__ value of \"step\" is an integer, not a string");
  CHECK_THROWS_EMBER(parse_header(R"({"__metadata__":{"x":null}})"), "__metadata__ value of \"x\" is a null");
  CHECK_THROWS_EMBER(parse_header(R"({"__metadata__":["a"]})"), "__metadata__ is an array, not an object of strings");
}

TEST_CASE("safetensors bad file: a name given twice") {
  CHECK_THROWS_EMBER(parse_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                  R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                  8),
                     "safetensors: mem.safetensors: header names \"a\" twice");
}
