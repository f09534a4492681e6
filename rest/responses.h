// Small builders of the answers every REST handler gives: a JSON body with a status, and 405
// with the Allow header.
#pragma once

#include <string>
#include <utility>

#include "rest/http.h"
#include "rest/problem.h"

namespace sriovd::rest {

inline Response json_response(std::string body, int status = 200) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

inline Response method_not_allowed(const Request& req, const char* allow) {
  Response r = problem(HttpRefusal::method_not_allowed, req.method + " is not allowed on " + req.path, req.path);
  r.headers.emplace_back("Allow", allow);
  return r;
}

}  // namespace sriovd::rest
