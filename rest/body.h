// The JSON body of a mutation, read the one way every handler reads it: the content type must
// say JSON (else 415), the text must parse (else 400 naming `body`) and it must match its schema
// in schemas/ (else the validator's 400 or 422 naming the field), all before anything is
// written.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "rest/http.h"

namespace sriovd::rest {

// Either the body or the problem to answer instead.
// bugprone-exception-escape flags the implicit moves: nlohmann::json's is noexcept but calls
// assert_invariant(), which clang-tidy cannot prove does not throw.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct JsonBody {
  nlohmann::json json;
  std::optional<Response> problem;
  explicit operator bool() const { return !problem; }
};

// `optional`: an empty body is read as {} (and not checked against the schema).
JsonBody read_json_body(const Request& req, const std::string& schema, bool optional = false);

}  // namespace sriovd::rest
