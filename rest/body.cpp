#include "rest/body.h"

#include "rest/problem.h"
#include "schemas/validator.h"

namespace sriovd::rest {

JsonBody read_json_body(const Request& req, const std::string& schema, bool optional) {
  JsonBody out;
  if (optional && req.body.empty()) {
    out.json = nlohmann::json::object();
    return out;
  }
  const std::string* ct = req.header("content-type");
  if (ct && ct->find("json") == std::string::npos) {
    out.problem =
        problem(HttpRefusal::unsupported_media_type, "the body must be application/json, not " + *ct, req.path);
    return out;
  }
  out.json = nlohmann::json::parse(req.body, nullptr, false);
  if (out.json.is_discarded()) {
    out.problem = problem(ErrorCode::bad_request, "the body is not JSON", req.path, "body");
    return out;
  }
  if (auto v = schemas::api_validator().validate(schema, out.json); !v) out.problem = problem(v.error(), req.path);
  return out;
}

}  // namespace sriovd::rest
