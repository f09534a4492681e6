// problem+json (RFC 9457): the one place where an Error becomes an HTTP status and a body.
#pragma once

#include <string>

#include "base/result.h"
#include "rest/http.h"

namespace sriovd::rest {

int http_status(ErrorCode code) noexcept;

// {"type","title","status","detail","instance"[, "field"]} with content type
// application/problem+json.
Response problem(const Error& error, const std::string& instance);
Response problem(int status, const std::string& code, const std::string& detail, const std::string& instance,
                 const std::string& field = {});

}  // namespace sriovd::rest
