#include "base/result.h"

#include <cstring>

namespace sriovd {

const char* to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::internal: return "internal";
    case ErrorCode::bad_request: return "bad_request";
    case ErrorCode::invalid: return "invalid";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::conflict: return "conflict";
    case ErrorCode::unavailable: return "unavailable";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::io: return "io";
  }
  return "internal";
}

ErrorCode code_for_errno(int errnum) noexcept {
  switch (errnum) {
    case ENOENT:
    case ENODEV:
    case ENXIO: return ErrorCode::not_found;
    case EBUSY:
    case EEXIST:
    case EAGAIN:
    case EALREADY: return ErrorCode::conflict;
    case EINVAL:
    case ERANGE:
    case EDOM: return ErrorCode::invalid;
    case EOPNOTSUPP:
    case EPROTONOSUPPORT: return ErrorCode::unsupported;
    case EACCES:
    case EPERM: return ErrorCode::unavailable;
    default: return ErrorCode::io;
  }
}

Error Error::sys(int errnum, std::string message) {
  Error e;
  e.code = code_for_errno(errnum);
  e.errnum = errnum;
  e.message = std::move(message);
  if (errnum != 0) {
    e.message += ": ";
    e.message += std::strerror(errnum);
  }
  return e;
}

Error Error::make(ErrorCode code, std::string message, std::string field) {
  Error e;
  e.code = code;
  e.message = std::move(message);
  e.field = std::move(field);
  return e;
}

Error Error::because(ErrorCode code, std::string reason, std::string message) {
  Error e;
  e.code = code;
  e.reason = std::move(reason);
  e.message = std::move(message);
  return e;
}

Error&& Error::context(const std::string& what) && {
  message = what + ": " + message;
  return std::move(*this);
}

Error& Error::context(const std::string& what) & {
  message = what + ": " + message;
  return *this;
}

}  // namespace sriovd
