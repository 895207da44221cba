/// \file
/// \brief Whole-file I/O: crash-safe replacement of a file (write a temporary file, fsync, rename) and
/// reading a file into memory.
///
/// A checkpoint or log written with write_file_atomic() is, after a crash or power loss at any moment,
/// either the old file or the new one, never a torn mix: rename(2) replaces a directory entry
/// atomically, and the fsync of the file before the rename (and of the directory after it) makes
/// sure the new data and the new entry have reached the disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ember {

/// Replaces `path` with `size` bytes from `data`, atomically: writes `.NAME.tmp.PID.N` in the
/// same directory, fsyncs it, renames it over `path` and fsyncs the directory. An existing file keeps
/// its permission bits. On failure the temporary file is removed, `path` is left as it was, and an
/// ember::Error names the path and the system's reason.
void write_file_atomic(const std::string& path, const void* data, std::size_t size);

/// write_file_atomic() of a string's bytes.
void write_file_atomic(const std::string& path, const std::string& contents);

/// The whole content of the file at `path`; throws ember::Error naming the path and the reason when
/// it cannot be opened or read, or is a directory.
std::vector<std::uint8_t> read_file(const std::string& path);

}  // namespace ember
