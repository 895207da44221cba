/// \file
/// \brief Atomic file replacement: contents round trip, permissions kept, the old file intact and no
/// temporary file left when writing fails (the target is a directory, the parent is missing, the file
/// size limit is hit), and read_file's errors.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "helpers.h"

namespace fs = std::filesystem;
using namespace ember;
using ember::test::TempDir;
using ember::test::slurp;
using ember::test::spit;

namespace {

/// The names in a directory.
std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

/// Lowers RLIMIT_FSIZE (and ignores SIGXFSZ, so write() fails with EFBIG) for its lifetime.
struct FileSizeLimit {
  rlimit old{};
  void (*old_handler)(int) = nullptr;
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &old);
    old_handler = ::signal(SIGXFSZ, SIG_IGN);
    rlimit lower = old;
    lower.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &lower);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old);
    ::signal(SIGXFSZ, old_handler);
  }
};

}  // namespace

TEST_CASE("write_file_atomic: binary contents round trip and replace the old file") {
  TempDir dir("ember-atomic");
  const std::string path = dir / "data.bin";
  const std::uint8_t bytes[] = {0, 1, 2, 255, 0, 10, 13, 0x80};
  write_file_atomic(path, bytes, sizeof bytes);
  CHECK(slurp(path) == std::string("\x00\x01\x02\xff\x00\x0a\x0d\x80", 8));
  CHECK(read_file(path) == std::vector<std::uint8_t>{0, 1, 2, 255, 0, 10, 13, 0x80});
  write_file_atomic(path, std::string("shorter"));
  CHECK(slurp(path) == "shorter");
  write_file_atomic(path, std::string());
  CHECK(fs::file_size(path) == 0);
  CHECK(read_file(path).empty());
  CHECK(listing(dir.path) == std::set<std::string>{"data.bin"});  // no temporary file left behind
}

TEST_CASE("write_file_atomic: a large file and a relative path") {
  TempDir dir("ember-atomic");
  std::string big(3'000'017, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) % 251);
  write_file_atomic(dir / "big", big);
  CHECK(slurp(dir / "big") == big);
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path);
  write_file_atomic("relative.txt", std::string("here"));
  fs::current_path(cwd);
  CHECK(slurp(dir / "relative.txt") == "here");
  CHECK(listing(dir.path) == std::set<std::string>{"big", "relative.txt"});
}

TEST_CASE("write_file_atomic: an existing file keeps its permission bits") {
  TempDir dir("ember-atomic");
  const std::string path = dir / "secret";
  spit(path, "old");
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  write_file_atomic(path, std::string("new"));
  CHECK(slurp(path) == "new");
  CHECK(fs::status(path).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
}

TEST_CASE("write_file_atomic: a target that is a directory is left alone") {
  TempDir dir("ember-atomic");
  const std::string target = dir / "sub";
  fs::create_directory(target);
  spit(dir / "sub/inside", "keep me");
  CHECK_THROWS_EMBER(write_file_atomic(target, std::string("x")),
                     ("write_file_atomic: cannot replace '" + target + "'").c_str());
  CHECK_THROWS_EMBER(write_file_atomic(target, std::string("x")), "Is a directory");
  CHECK(fs::is_directory(target));
  CHECK(slurp(dir / "sub/inside") == "keep me");
  CHECK(listing(dir.path) == std::set<std::string>{"sub"});
}

TEST_CASE("write_file_atomic: a missing parent directory") {
  TempDir dir("ember-atomic");
  const std::string path = dir / "missing/file.txt";
  CHECK_THROWS_EMBER(write_file_atomic(path, std::string("x")), ("for '" + path + "'").c_str());
  CHECK_THROWS_EMBER(write_file_atomic(path, std::string("x")), "No such file or directory");
  CHECK_THROWS_EMBER(write_file_atomic(dir / "dir/", std::string("x")), "does not name a file");
  CHECK(listing(dir.path).empty());
}

TEST_CASE("write_file_atomic: a failed write keeps the old file and removes the temporary one") {
  TempDir dir("ember-atomic");
  const std::string path = dir / "checkpoint";
  spit(path, "old contents");
  {
    const FileSizeLimit limit(16);  // works for root too, unlike a read-only directory
    CHECK_THROWS_EMBER(write_file_atomic(path, std::string(1000, 'n')), "File too large");
  }
  CHECK(slurp(path) == "old contents");
  CHECK(listing(dir.path) == std::set<std::string>{"checkpoint"});
}

TEST_CASE("write_file_atomic: a read-only directory (when not root)") {
  if (::geteuid() == 0) return;  // root may write anywhere
  TempDir dir("ember-atomic");
  const std::string path = dir / "f";
  spit(path, "old");
  fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
  CHECK_THROWS_EMBER(write_file_atomic(path, std::string("new")), "Permission denied");
  fs::permissions(dir.path, fs::perms::owner_all);
  CHECK(slurp(path) == "old");
  CHECK(listing(dir.path) == std::set<std::string>{"f"});
}

TEST_CASE("read_file: errors name the path and the reason") {
  TempDir dir("ember-atomic");
  const std::string missing = dir / "nope";
  CHECK_THROWS_EMBER(read_file(missing),
                     ("read_file: cannot open '" + missing + "': No such file or directory").c_str());
  CHECK_THROWS_EMBER(read_file(dir.path.string()),
                     ("read_file: cannot read '" + dir.path.string() + "': Is a directory").c_str());
}
