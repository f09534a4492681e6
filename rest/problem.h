// problem+json (RFC 9457): the one place where an Error becomes an HTTP status and a body.
//
// One table maps every ErrorCode, and the few refusals only the HTTP layer gives (401, 403, 405,
// 415), to its status, its problem `type` URI and its `title`; every problem+json the API sends
// is built here from that table, so no handler spells out a status for an error.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "rest/http.h"

namespace sriovd::rest {

// Refusals that come from HTTP itself rather than from what a request asks of the host.
enum class HttpRefusal {
  unauthorized,            // 401: no or a bad bearer token
  forbidden,               // 403: the token may not do this
  method_not_allowed,      // 405: a known path, another method
  unsupported_media_type,  // 415: a body that is not JSON
};

// A row of the table: the status, the `type` URI ("urn:sriovd:problem:not-found") and the
// `title` ("Not Found") of a kind of problem.
struct ProblemKind {
  int status;
  std::string_view type;
  std::string_view title;
};

const ProblemKind& problem_kind(ErrorCode code) noexcept;
const ProblemKind& problem_kind(HttpRefusal refusal) noexcept;

inline int http_status(ErrorCode code) noexcept { return problem_kind(code).status; }

// {"type","title","status","detail","instance"[, "field"][, "errno"]} with content type
// application/problem+json; the error's message is the detail.
Response problem(const Error& error, const std::string& instance);
// The same for an error made on the spot.
Response problem(ErrorCode code, const std::string& detail, const std::string& instance, const std::string& field = {});
Response problem(HttpRefusal refusal, const std::string& detail, const std::string& instance);

}  // namespace sriovd::rest
