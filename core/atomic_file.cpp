/// \file
/// \brief Atomic file replacement (temporary file, fsync, rename, fsync of the directory) and whole-file
/// reads, with POSIX calls so every failure can report errno.
#include "core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "core/error.h"

namespace ember {

namespace {

/// Throws "<op>: <what> '<path>': <strerror(err)>".
[[noreturn]] void fail(const char* op, const std::string& what, const std::string& path, int err) {
  throw Error(fmt::format("{}: {} '{}': {}", op, what, path, std::strerror(err)));
}

/// Closes a file descriptor when it goes out of scope (unless released).
struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
  /// close(2) now, returning its errno (0 on success).
  int close_now() {
    const int rc = ::close(fd);
    fd = -1;
    return rc == 0 ? 0 : errno;
  }
};

/// Removes the temporary file unless the rename consumed it.
struct TempGuard {
  std::string path;
  bool armed = true;
  ~TempGuard() {
    if (armed) ::unlink(path.c_str());
  }
};

/// Writes all `size` bytes, retrying short writes and EINTR; returns errno or 0.
int write_all(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return 0;
}

/// `.<name>.tmp.<pid>.<n>` beside `target`; n makes concurrent writers in one process distinct.
std::string temp_name_for(const std::filesystem::path& target) {
  static std::atomic<std::uint64_t> counter{0};
  const std::string name = fmt::format(".{}.tmp.{}.{}", target.filename().string(), ::getpid(), counter++);
  return (target.parent_path() / name).string();
}

/// fsync of the directory holding `target`, so the renamed entry itself is durable. File systems that
/// cannot fsync a directory answer EINVAL; the rename is then as durable as they make it.
void sync_directory(const std::filesystem::path& target) {
  const std::filesystem::path dir = target.parent_path().empty() ? "." : target.parent_path();
  FdGuard d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd < 0) fail("write_file_atomic", "cannot open the directory", dir.string(), errno);
  if (::fsync(d.fd) != 0 && errno != EINVAL)
    fail("write_file_atomic", "cannot fsync the directory", dir.string(), errno);
}

}  // namespace

void write_file_atomic(const std::string& path, const void* data, std::size_t size) {
  const std::filesystem::path target(path);
  EMBER_CHECK(!path.empty() && target.has_filename(),
              fmt::format("write_file_atomic: '{}' does not name a file", path));
  TempGuard temp{temp_name_for(target)};
  FdGuard f{::open(temp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666)};
  if (f.fd < 0) {
    temp.armed = false;  // not ours: O_EXCL failed or nothing was created
    fail("write_file_atomic", fmt::format("cannot create a temporary file for '{}' at", path), temp.path, errno);
  }
  struct stat old {};
  if (::stat(path.c_str(), &old) == 0 && S_ISREG(old.st_mode)) ::fchmod(f.fd, old.st_mode & 07777);
  if (const int err = write_all(f.fd, data, size)) fail("write_file_atomic", "cannot write", temp.path, err);
  if (::fsync(f.fd) != 0) fail("write_file_atomic", "cannot fsync", temp.path, errno);
  if (const int err = f.close_now()) fail("write_file_atomic", "cannot close", temp.path, err);
  if (::rename(temp.path.c_str(), path.c_str()) != 0) fail("write_file_atomic", "cannot replace", path, errno);
  temp.armed = false;
  sync_directory(target);
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  write_file_atomic(path, contents.data(), contents.size());
}

std::vector<std::uint8_t> read_file(const std::string& path) {
  FdGuard f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) fail("read_file", "cannot open", path, errno);
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail("read_file", "cannot stat", path, errno);
  if (S_ISDIR(st.st_mode)) fail("read_file", "cannot read", path, EISDIR);
  std::vector<std::uint8_t> bytes;
  bytes.reserve(S_ISREG(st.st_mode) ? static_cast<std::size_t>(st.st_size) : 0);
  std::uint8_t chunk[65536];
  for (;;) {  // read to EOF rather than trusting st_size, which a concurrent writer may change
    const ssize_t n = ::read(f.fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("read_file", "cannot read", path, errno);
    if (n == 0) break;
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  return bytes;
}

}  // namespace ember
