// simio: the file calls the simulated kernel and the sim tree writer share, as thin wrappers of
// the system calls that keep errno in the errors they return.
//
// Paths are taken as C strings (or relative to a directory fd): std::filesystem::path parses its
// components at every append, which on the simulated kernel's hot calls cost more than the
// system calls themselves. The tree's files are regular files, so a short read is the end.
// Errors carry errno and "reading <path>" / "writing <path>" / "listing <path>"; callers that
// name a path differently (relative to their root) re-wrap the errno. Stateless, thread-safe.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace sriovd::simio {

// The whole file `name` under `dirfd`; read_text: a path.
Result<std::string> read_at(int dirfd, const char* name);
Result<std::string> read_text(const char* p);

// Writes `data` to `name` under `dirfd`, creating (mode 0644) or truncating it; `extra_flags`
// are added to open's (O_NOFOLLOW for the tree writer, which never writes through a link).
// write_text: a path.
Result<void> write_at(int dirfd, const char* name, std::string_view data, int extra_flags = 0);
Result<void> write_text(const char* p, std::string_view data);

// Whole-file replacement by rename of "<p>.tmp", so a crash never leaves half a state file.
Result<void> write_atomic(const char* p, std::string_view data);

// The link's text; nullopt with errno set when `p` is no link.
std::optional<std::string> read_link(const char* p);

// lstat succeeds / stat says directory.
bool lexists(const char* p);
bool is_dir(const char* p);

// Names in a directory without "." and "..", in readdir order. ENOENT is an empty list.
Result<std::vector<std::string>> list_dir(const char* p);
// The same sorted, and empty on any error: a directory the simulated kernel cannot read holds
// nothing it acts on.
std::vector<std::string> list_names(const char* p);

// realpath(3) without its readlink of every component: the path is resolved once (open O_PATH)
// and /proc/self/fd names where it led. nullopt with open's errno on failure.
std::optional<std::filesystem::path> real_path(const char* p);

// The overloads for what callers have.
template <class P>
concept PathLike = std::is_same_v<P, std::filesystem::path> || std::is_same_v<P, std::string>;
template <PathLike P>
Result<std::string> read_text(const P& p) {
  return read_text(p.c_str());
}
template <PathLike P>
Result<void> write_text(const P& p, std::string_view data) {
  return write_text(p.c_str(), data);
}
template <PathLike P>
Result<void> write_atomic(const P& p, std::string_view data) {
  return write_atomic(p.c_str(), data);
}
template <PathLike P>
std::optional<std::string> read_link(const P& p) {
  return read_link(p.c_str());
}
template <PathLike P>
bool lexists(const P& p) {
  return lexists(p.c_str());
}
template <PathLike P>
bool is_dir(const P& p) {
  return is_dir(p.c_str());
}
template <PathLike P>
std::vector<std::string> list_names(const P& p) {
  return list_names(p.c_str());
}
template <PathLike P>
std::optional<std::filesystem::path> real_path(const P& p) {
  return real_path(p.c_str());
}

}  // namespace sriovd::simio
