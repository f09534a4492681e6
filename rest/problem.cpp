#include "rest/problem.h"

#include <iterator>
#include <nlohmann/json.hpp>

namespace sriovd::rest {

namespace {

// The type is "urn:sriovd:problem:" and the code's name with '-' for '_'.
struct CodeRow {
  ErrorCode code;
  ProblemKind kind;
};
constexpr CodeRow kByCode[] = {
    {ErrorCode::internal, {500, "urn:sriovd:problem:internal", "Internal Server Error"}},
    {ErrorCode::bad_request, {400, "urn:sriovd:problem:bad-request", "Bad Request"}},
    {ErrorCode::invalid, {422, "urn:sriovd:problem:invalid", "Unprocessable Content"}},
    {ErrorCode::not_found, {404, "urn:sriovd:problem:not-found", "Not Found"}},
    {ErrorCode::conflict, {409, "urn:sriovd:problem:conflict", "Conflict"}},
    {ErrorCode::unavailable, {503, "urn:sriovd:problem:unavailable", "Service Unavailable"}},
    {ErrorCode::unsupported, {501, "urn:sriovd:problem:unsupported", "Not Implemented"}},
    {ErrorCode::io, {500, "urn:sriovd:problem:io", "Internal Server Error"}},
};

struct RefusalRow {
  HttpRefusal refusal;
  ProblemKind kind;
};
constexpr RefusalRow kByRefusal[] = {
    {HttpRefusal::unauthorized, {401, "urn:sriovd:problem:unauthorized", "Unauthorized"}},
    {HttpRefusal::forbidden, {403, "urn:sriovd:problem:forbidden", "Forbidden"}},
    {HttpRefusal::method_not_allowed, {405, "urn:sriovd:problem:method-not-allowed", "Method Not Allowed"}},
    {HttpRefusal::unsupported_media_type, {415, "urn:sriovd:problem:unsupported-media-type", "Unsupported Media Type"}},
};

// Row i is the enumerator of value i, so a lookup is an index; every enumerator has its row.
constexpr bool codes_in_order() {
  for (size_t i = 0; i < std::size(kByCode); ++i)
    if (static_cast<size_t>(kByCode[i].code) != i) return false;
  return std::size(kByCode) == static_cast<size_t>(ErrorCode::io) + 1;
}
constexpr bool refusals_in_order() {
  for (size_t i = 0; i < std::size(kByRefusal); ++i)
    if (static_cast<size_t>(kByRefusal[i].refusal) != i) return false;
  return std::size(kByRefusal) == static_cast<size_t>(HttpRefusal::unsupported_media_type) + 1;
}
static_assert(codes_in_order(), "kByCode: one row per ErrorCode, in declaration order");
static_assert(refusals_in_order(), "kByRefusal: one row per HttpRefusal, in declaration order");

nlohmann::json body_of(const ProblemKind& kind, const std::string& detail, const std::string& instance,
                       const std::string& field) {
  nlohmann::json j = {
      {"type", kind.type}, {"title", kind.title}, {"status", kind.status}, {"detail", detail}, {"instance", instance}};
  if (!field.empty()) j["field"] = field;
  return j;
}

Response response_of(int status, const nlohmann::json& body) {
  Response r;
  r.status = status;
  r.content_type = "application/problem+json";
  // Text that is not UTF-8 (a detail or instance echoing a request's bytes) is sent with U+FFFD
  // in place of each bad byte instead of making the encoder throw.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

}  // namespace

const ProblemKind& problem_kind(ErrorCode code) noexcept {
  auto i = static_cast<size_t>(code);
  return i < std::size(kByCode) ? kByCode[i].kind : kByCode[static_cast<size_t>(ErrorCode::internal)].kind;
}

const ProblemKind& problem_kind(HttpRefusal refusal) noexcept { return kByRefusal[static_cast<size_t>(refusal)].kind; }

Response problem(ErrorCode code, const std::string& detail, const std::string& instance, const std::string& field) {
  const ProblemKind& kind = problem_kind(code);
  return response_of(kind.status, body_of(kind, detail, instance, field));
}

Response problem(HttpRefusal refusal, const std::string& detail, const std::string& instance) {
  const ProblemKind& kind = problem_kind(refusal);
  return response_of(kind.status, body_of(kind, detail, instance, {}));
}

Response problem(const Error& error, const std::string& instance) {
  const ProblemKind& kind = problem_kind(error.code);
  nlohmann::json j = body_of(kind, error.message, instance, error.field);
  if (error.errnum != 0) j["errno"] = error.errnum;
  return response_of(kind.status, j);
}

}  // namespace sriovd::rest
