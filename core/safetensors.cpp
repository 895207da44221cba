/// \file
/// \brief safetensors reading and writing. Reading validates the header completely (types, dtypes,
/// shapes with overflow checks, offsets that tile the data section exactly) before allocating
/// anything, so the memory a file can make us allocate is bounded by the file's own size.
#include "core/safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/ops.h"

namespace ember::safetensors {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

using Json = nlohmann::json;

/// One tensor's header entry, validated.
struct Entry {
  std::string name;
  DType dtype = DType::Float32;
  Shape shape;
  std::uint64_t begin = 0, end = 0;  // byte offsets into the data section
};

/// A validated header: entries sorted by offset, covering the data section exactly.
struct Layout {
  std::vector<Entry> entries;
  Metadata metadata;
};

/// Throws "safetensors: <source>: <what>".
[[noreturn]] void bad(const std::string& source, const std::string& what) {
  throw Error(fmt::format("safetensors: {}: {}", source, what));
}

struct DTypeCode {
  DType dtype;
  const char* code;
};
constexpr DTypeCode kCodes[] = {{DType::Float32, "F32"},   {DType::Float64, "F64"}, {DType::Float16, "F16"},
                                {DType::BFloat16, "BF16"}, {DType::Int64, "I64"},   {DType::Bool, "BOOL"}};

/// The JSON value's type as a noun for messages ("a string", "an array", ...).
std::string json_kind(const Json& j) {
  if (j.is_number_float()) return "a floating-point number";
  if (j.is_number_integer() && !j.is_number_unsigned()) return "a negative integer";
  if (j.is_number()) return "an integer";
  const std::string t = j.type_name();
  return (t == "array" || t == "object" ? "an " : "a ") + t;
}

/// The 8-byte little-endian header length, checked against the limits and the file size.
std::uint64_t header_length(const std::uint8_t* prefix, std::uint64_t file_size, const std::string& source) {
  if (file_size < 8) bad(source, fmt::format("file is {} bytes, too short for the 8-byte header length", file_size));
  std::uint64_t n = 0;
  std::memcpy(&n, prefix, 8);
  if (n > kMaxHeaderSize) bad(source, fmt::format("header length {} exceeds the limit of {} bytes", n, kMaxHeaderSize));
  if (n > file_size - 8)
    bad(source, fmt::format("header length {} runs past the end of the file ({} bytes)", n, file_size));
  return n;
}

/// Parses the JSON header, recording the order of its top-level keys (JSON objects are unordered, but
/// tensors of zero bytes share an offset, and their file order is the only order they have).
Json parse_json(const char* text, std::size_t n, const std::string& source, std::vector<std::string>& keys) {
  auto record_keys = [&keys](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key) keys.push_back(parsed.get<std::string>());
    return true;
  };
  // nlohmann's parser stops at a NUL byte as at the end of input; JSON allows none anywhere.
  if (const void* nul = std::memchr(text, 0, n))
    bad(source, fmt::format("header is not valid JSON (NUL byte at offset {})", static_cast<const char*>(nul) - text));
  try {
    return Json::parse(text, text + n, record_keys);
  } catch (const Json::exception& e) {
    bad(source, fmt::format("header is not valid JSON ({})", e.what()));
  }
}

Metadata parse_metadata(const Json& j, const std::string& source) {
  Metadata m;
  if (j.is_null()) return m;  // the Python package accepts "__metadata__": null
  if (!j.is_object()) bad(source, fmt::format("__metadata__ is {}, not an object of strings", json_kind(j)));
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string())
      bad(source, fmt::format("__metadata__ value of \"{}\" is {}, not a string", key, json_kind(value)));
    m.emplace(key, value.get<std::string>());
  }
  return m;
}

/// The required field `key` of tensor `name`'s entry.
const Json& field(const Json& entry, const std::string& name, const char* key, const std::string& source) {
  const auto it = entry.find(key);
  if (it == entry.end()) bad(source, fmt::format("tensor \"{}\" has no \"{}\"", name, key));
  return *it;
}

DType parse_dtype(const Json& j, const std::string& name, const std::string& source) {
  if (!j.is_string()) bad(source, fmt::format("tensor \"{}\": \"dtype\" is {}, not a string", name, json_kind(j)));
  const std::string code = j.get<std::string>();
  for (const auto& c : kCodes)
    if (code == c.code) return c.dtype;
  bad(source, fmt::format("tensor \"{}\" has unknown dtype \"{}\" (ember reads F32, F64, F16, BF16, I64 and BOOL)",
                          name, code));
}

/// A JSON array of non-negative integers (`what` names it in messages).
std::vector<std::uint64_t> parse_uints(const Json& j, const std::string& name, const char* what,
                                       const std::string& source) {
  if (!j.is_array())
    bad(source, fmt::format("tensor \"{}\": \"{}\" is {}, not an array of integers", name, what, json_kind(j)));
  std::vector<std::uint64_t> v;
  v.reserve(j.size());
  for (const Json& x : j) {
    if (!x.is_number_unsigned())
      bad(source, fmt::format("tensor \"{}\": \"{}\" holds {} ({}), not a non-negative integer", name, what,
                              json_kind(x), x.dump()));
    v.push_back(x.get<std::uint64_t>());
  }
  return v;
}

/// Shape and byte count of a tensor; rejects shapes whose element count overflows int64.
Shape parse_shape(const Json& j, const Entry& e, std::uint64_t& nbytes, const std::string& source) {
  const std::vector<std::uint64_t> dims = parse_uints(j, e.name, "shape", source);
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t count = 1;
  for (std::uint64_t d : dims) {
    if (d > kMax || (d != 0 && count > kMax / d))
      bad(source,
          fmt::format("tensor \"{}\" has shape [{}], whose element count overflows", e.name, fmt::join(dims, ", ")));
    count *= d;
  }
  const std::uint64_t item = element_size(e.dtype);
  if (count > kMax / item)
    bad(source, fmt::format("tensor \"{}\" has shape [{}], whose byte count overflows", e.name, fmt::join(dims, ", ")));
  nbytes = count * item;
  return Shape(dims.begin(), dims.end());
}

Entry parse_entry(const std::string& name, const Json& j, std::uint64_t data_size, const std::string& source) {
  if (!j.is_object()) bad(source, fmt::format("entry \"{}\" is {}, not an object", name, json_kind(j)));
  Entry e;
  e.name = name;
  e.dtype = parse_dtype(field(j, name, "dtype", source), name, source);
  std::uint64_t nbytes = 0;
  e.shape = parse_shape(field(j, name, "shape", source), e, nbytes, source);
  const auto offsets = parse_uints(field(j, name, "data_offsets", source), name, "data_offsets", source);
  if (offsets.size() != 2)
    bad(source, fmt::format("tensor \"{}\": \"data_offsets\" has {} values, not 2", name, offsets.size()));
  e.begin = offsets[0];
  e.end = offsets[1];
  if (e.end < e.begin)
    bad(source, fmt::format("tensor \"{}\" has data_offsets [{}, {}] with end before begin", name, e.begin, e.end));
  if (e.end - e.begin != nbytes)
    bad(source, fmt::format("tensor \"{}\": data_offsets [{}, {}] span {} bytes, but {} [{}] needs {}", name, e.begin,
                            e.end, e.end - e.begin, dtype_code(e.dtype), fmt::join(e.shape, ", "), nbytes));
  if (e.end > data_size)
    bad(source, fmt::format("tensor \"{}\": data_offsets [{}, {}] run past the end of the data ({} bytes)", name,
                            e.begin, e.end, data_size));
  return e;
}

/// Sorts by offset and checks that the tensors tile [0, data_size) exactly, as the Python package does.
void check_tiling(std::vector<Entry>& entries, std::uint64_t data_size, const std::string& source) {
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  std::uint64_t expected = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < expected)
      bad(source, fmt::format("tensor \"{}\" (data_offsets [{}, {}]) overlaps tensor \"{}\" ([{}, {}])", e.name,
                              e.begin, e.end, previous->name, previous->begin, previous->end));
    if (e.begin > expected)
      bad(source, fmt::format("hole of {} unused bytes in the data before tensor \"{}\" at offset {}",
                              e.begin - expected, e.name, e.begin));
    expected = e.end;
    previous = &e;
  }
  if (expected != data_size)
    bad(source, fmt::format("{} unused bytes after the last tensor (the data section is {} bytes, tensors end at {})",
                            data_size - expected, data_size, expected));
}

/// Validates a header of `n` bytes describing a data section of `data_size` bytes.
Layout parse_header(const char* text, std::size_t n, std::uint64_t data_size, const std::string& source) {
  std::vector<std::string> keys;
  const Json header = parse_json(text, n, source, keys);
  if (!header.is_object()) bad(source, fmt::format("header is {}, not a JSON object", json_kind(header)));
  std::vector<std::string> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  if (const auto dup = std::adjacent_find(sorted.begin(), sorted.end()); dup != sorted.end())
    bad(source, fmt::format("header names \"{}\" twice", *dup));
  Layout layout;
  for (const std::string& key : keys) {
    if (key == "__metadata__")
      layout.metadata = parse_metadata(header.at(key), source);
    else
      layout.entries.push_back(parse_entry(key, header.at(key), data_size, source));
  }
  check_tiling(layout.entries, data_size, source);
  return layout;
}

/// An empty tensor for an entry (its bytes are filled by the caller).
Tensor allocate(const Entry& e) { return Tensor::empty(e.shape, e.dtype, Device::cpu()); }

/// C++ bool must be 0 or 1; a file may hold any byte (NumPy reads non-zero as true).
void normalize_bools(const Tensor& t) {
  if (t.dtype() != DType::Bool) return;
  auto* p = static_cast<std::uint8_t*>(t.raw_data());
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = p[i] != 0;
}

/// Names non-empty, not "__metadata__", no repeats.
void check_names(const TensorList& tensors) {
  std::vector<std::string> names;
  for (const auto& [name, t] : tensors) {
    EMBER_CHECK(!name.empty(), "safetensors: serialize: a tensor name is empty");
    EMBER_CHECK(name != "__metadata__", "safetensors: serialize: \"__metadata__\" is reserved, not a tensor name");
    EMBER_CHECK(t.defined(), fmt::format("safetensors: serialize: tensor \"{}\" is undefined", name));
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  const auto dup = std::adjacent_find(names.begin(), names.end());
  EMBER_CHECK(dup == names.end(), fmt::format("safetensors: serialize: the name \"{}\" appears twice", *dup));
}

/// The header text for tensors already made contiguous on the host, padded with spaces so that
/// 8 + its length is a multiple of 8.
std::string header_text(const TensorList& tensors, const std::vector<Tensor>& host, const Metadata& metadata) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < host.size(); ++i) {
    const std::uint64_t nbytes = static_cast<std::uint64_t>(host[i].numel()) * element_size(host[i].dtype());
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_code(host[i].dtype());
    entry["shape"] = host[i].shape();
    entry["data_offsets"] = {offset, offset + nbytes};
    h[tensors[i].first] = std::move(entry);
    offset += nbytes;
  }
  std::string text;
  try {
    text = h.dump();
  } catch (const nlohmann::ordered_json::exception& e) {
    throw Error(fmt::format("safetensors: serialize: a name or metadata string is not valid UTF-8 ({})", e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

std::string dtype_code(DType dtype) {
  for (const auto& c : kCodes)
    if (c.dtype == dtype) return c.code;
  throw Error(fmt::format("safetensors: no code for dtype {}", dtype_name(dtype)));
}

const Tensor& Contents::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  std::vector<std::string> names;
  for (const auto& entry : tensors) names.push_back(entry.first);
  throw Error(fmt::format("safetensors: no tensor named \"{}\" (the file has: {})", name, fmt::join(names, ", ")));
}

bool Contents::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(), [&](const auto& entry) { return entry.first == name; });
}

std::vector<std::uint8_t> serialize(const TensorList& tensors, const Metadata& metadata) {
  check_names(tensors);
  std::vector<Tensor> host;
  for (const auto& entry : tensors) host.push_back(raw::contiguous(raw::to_device(entry.second, Device::cpu())));
  const std::string header = header_text(tensors, host, metadata);
  std::size_t total = 8 + header.size();
  for (const Tensor& t : host) total += t.numel() * element_size(t.dtype());
  std::vector<std::uint8_t> out(8);
  out.reserve(total);
  const std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  out.insert(out.end(), header.begin(), header.end());
  for (const Tensor& t : host) {
    const auto* p = static_cast<const std::uint8_t*>(t.numel() > 0 ? t.raw_data() : nullptr);
    out.insert(out.end(), p, p + t.numel() * element_size(t.dtype()));
  }
  return out;
}

void save(const std::string& path, const TensorList& tensors, const Metadata& metadata) {
  const std::vector<std::uint8_t> bytes = serialize(tensors, metadata);
  write_file_atomic(path, bytes.data(), bytes.size());
}

Contents parse(const std::uint8_t* data, std::size_t size, const std::string& source_name) {
  const std::uint64_t n = header_length(data, size, source_name);
  const std::uint8_t* data_section = data + 8 + n;
  Layout layout = parse_header(reinterpret_cast<const char*>(data + 8), n, size - 8 - n, source_name);
  Contents c{{}, std::move(layout.metadata)};
  for (const Entry& e : layout.entries) {
    Tensor t = allocate(e);
    if (e.end > e.begin) std::memcpy(t.raw_data(), data_section + e.begin, e.end - e.begin);
    normalize_bools(t);
    c.tensors.emplace_back(e.name, std::move(t));
  }
  return c;
}

namespace {

/// Closes a FILE* on scope exit.
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

/// Reads exactly n bytes or throws naming the file.
void read_exact(std::FILE* f, void* dst, std::uint64_t n, const std::string& path) {
  if (n > 0 && std::fread(dst, 1, n, f) != n)
    bad(path, std::ferror(f) ? fmt::format("read failed: {}", std::strerror(errno)) : "file shrank while reading");
}

}  // namespace

Contents load(const std::string& path) {
  // Streams the tensors straight into their storage (the offsets tile the data section in order), so
  // a checkpoint is never held twice in memory.
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) bad(path, fmt::format("cannot open: {}", std::strerror(errno)));
  struct stat st {};
  if (::fstat(::fileno(f.get()), &st) != 0 || S_ISDIR(st.st_mode)) bad(path, "cannot read: not a regular file");
  if (std::fseek(f.get(), 0, SEEK_END) != 0) bad(path, fmt::format("cannot seek: {}", std::strerror(errno)));
  const long end = std::ftell(f.get());
  if (end < 0) bad(path, fmt::format("cannot find the size: {}", std::strerror(errno)));
  std::rewind(f.get());
  const auto size = static_cast<std::uint64_t>(end);
  std::uint8_t prefix[8] = {};
  if (size >= 8) read_exact(f.get(), prefix, 8, path);
  const std::uint64_t n = header_length(prefix, size, path);
  std::string header(n, '\0');
  read_exact(f.get(), header.data(), n, path);
  Layout layout = parse_header(header.data(), n, size - 8 - n, path);
  Contents c{{}, std::move(layout.metadata)};
  for (const Entry& e : layout.entries) {
    Tensor t = allocate(e);
    read_exact(f.get(), t.numel() > 0 ? t.raw_data() : nullptr, e.end - e.begin, path);
    normalize_bools(t);
    c.tensors.emplace_back(e.name, std::move(t));
  }
  return c;
}

}  // namespace ember::safetensors
