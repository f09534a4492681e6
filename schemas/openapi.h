// The OpenAPI 3.1 document of the REST API (schemas/openapi.json, compiled in): the one source
// of truth for the API's shapes. Served at /v1/openapi.json and used to validate requests at
// run time and responses in tests.
#pragma once

#include <string_view>

namespace sriovd::schemas {

std::string_view openapi_json();

}  // namespace sriovd::schemas
