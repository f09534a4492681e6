#include "rest/problem.h"

#include <nlohmann/json.hpp>

namespace sriovd::rest {

namespace {

const char* title_for(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Internal Server Error" : "Error";
  }
}

std::string type_uri(std::string code) {
  for (auto& c : code)
    if (c == '_') c = '-';
  return "urn:sriovd:problem:" + code;
}

}  // namespace

int http_status(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::bad_request: return 400;
    case ErrorCode::invalid: return 422;
    case ErrorCode::not_found: return 404;
    case ErrorCode::conflict: return 409;
    case ErrorCode::unavailable: return 503;
    case ErrorCode::unsupported: return 501;
    case ErrorCode::io:
    case ErrorCode::internal: return 500;
  }
  return 500;
}

Response problem(int status, const std::string& code, const std::string& detail, const std::string& instance,
                 const std::string& field) {
  nlohmann::json j = {{"type", type_uri(code)},
                      {"title", title_for(status)},
                      {"status", status},
                      {"detail", detail},
                      {"instance", instance}};
  if (!field.empty()) j["field"] = field;
  Response r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = j.dump();
  return r;
}

Response problem(const Error& error, const std::string& instance) {
  Response r = problem(http_status(error.code), to_string(error.code), error.message, instance, error.field);
  if (error.errnum != 0) {
    auto j = nlohmann::json::parse(r.body);
    j["errno"] = error.errnum;
    r.body = j.dump();
  }
  return r;
}

}  // namespace sriovd::rest
