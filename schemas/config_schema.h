// The JSON Schema of sriovd's configuration file (schemas/config.schema.json, compiled in). The
// daemon validates /etc/sriovd/sriovd.json (or --config FILE) against it before reading a field.
#pragma once

#include <string_view>

namespace sriovd::schemas {

std::string_view config_schema_json();

}  // namespace sriovd::schemas
