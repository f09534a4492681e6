// The one error type of sriovd and the Result<T> that carries it.
//
// An Error holds a positive errno (0 when the failure is not a system call's), a machine-readable
// code that the REST layer maps to an HTTP status in one place, a human message that names the
// object and the reason, and optionally the request field at fault. Errors are values: they are
// created where the failure happens, given context on the way up, and logged once at the edge.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace sriovd {

enum class ErrorCode {
  internal,     // a bug or an unexpected system failure (500)
  bad_request,  // malformed syntax, e.g. an address that does not parse (400)
  invalid,      // well-formed but unacceptable value of a field (422)
  not_found,    // no such device, group, pool, lease (404)
  conflict,     // refused by an interlock, busy, lease taken (409)
  unavailable,  // not ready, dependency down (503)
  unsupported,  // the device or kernel cannot do this (501 over REST, 422 semantics)
  io,           // the host could not be read or written as expected (500)
};

const char* to_string(ErrorCode code) noexcept;

struct Error {
  ErrorCode code = ErrorCode::internal;
  int errnum = 0;       // positive errno, or 0
  std::string message;  // "reading 0000:17:00.0/sriov_totalvfs: No such file or directory"
  std::string field;    // request field at fault ("num_vfs"), empty if none
  std::string reason;   // finer machine-readable cause within `code` ("domain_not_found"),
                        // for callers that must tell apart failures sharing a code; or empty

  static Error sys(int errnum, std::string message);  // code derived from the errno
  static Error make(ErrorCode code, std::string message, std::string field = {});
  // An Error with a reason: Error::because(ErrorCode::not_found, "domain_not_found", "...").
  static Error because(ErrorCode code, std::string reason, std::string message);

  // Prefixes the message with context: "configuring VF 3: " + message.
  Error&& context(const std::string& what) &&;
  Error& context(const std::string& what) &;
};

// Maps an errno to the code a caller should see (EBUSY → conflict, ENOENT → not_found, ...).
ErrorCode code_for_errno(int errnum) noexcept;

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

  T value_or(T other) const& { return ok() ? value() : std::move(other); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), failed_(true) {}  // NOLINT

  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }
  const Error& error() const& { return err_; }
  Error&& error() && { return std::move(err_); }

 private:
  Error err_;
  bool failed_ = false;
};

inline Result<void> ok() { return {}; }

}  // namespace sriovd
