#include "schemas/validator.h"

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "schemas/config_schema.h"
#include "schemas/openapi.h"

namespace sriovd::schemas {

namespace {

// "<root>.spec.num_vfs" / "[root][num_vfs]" → "num_vfs": the field path a client understands.
std::string field_of(const std::vector<std::string>& context) {
  std::string out;
  for (const auto& c : context) {
    if (c == "<root>") continue;
    std::string part = c;
    if (part.size() >= 2 && part.front() == '[' && part.back() == ']') part = part.substr(1, part.size() - 2);
    if (!part.empty() && part.front() == '"' && part.back() == '"') part = part.substr(1, part.size() - 2);
    if (!out.empty()) out += '.';
    out += part;
  }
  return out;
}

}  // namespace

SchemaValidator::SchemaValidator(const nlohmann::json& document) {
  const auto& components = document.at("components").at("schemas");
  for (auto it = components.begin(); it != components.end(); ++it) {
    // Parse each component as a $ref into the whole document, so refs between components
    // ("#/components/schemas/PciAddress") resolve against the document root.
    nlohmann::json wrapper = document;
    wrapper["$ref"] = "#/components/schemas/" + it.key();
    auto schema = std::make_unique<valijson::Schema>();
    valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
    valijson::adapters::NlohmannJsonAdapter adapter(wrapper);
    parser.populateSchema(adapter, *schema);
    schemas_.emplace(it.key(), std::move(schema));
  }
}

SchemaValidator::SchemaValidator(const std::string& name, const nlohmann::json& schema) {
  auto compiled = std::make_unique<valijson::Schema>();
  valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
  valijson::adapters::NlohmannJsonAdapter adapter(schema);
  parser.populateSchema(adapter, *compiled);
  schemas_.emplace(name, std::move(compiled));
}

SchemaValidator::~SchemaValidator() = default;

Result<void> SchemaValidator::validate(const std::string& component, const nlohmann::json& value) const {
  auto it = schemas_.find(component);
  if (it == schemas_.end()) return Error::make(ErrorCode::internal, "no schema named " + component);
  // One valijson::Validator per thread: it caches the std::regex of every `pattern` it met, and
  // compiling those (addresses, MACs, names) is most of the cost of a validation; the cache is
  // not safe to share between threads.
  thread_local valijson::Validator validator(valijson::Validator::kStrongTypes);
  valijson::adapters::NlohmannJsonAdapter adapter(value);
  // Without a results object valijson stops at the first failure; only a failing value is
  // walked again to collect the errors and name the field.
  if (validator.validate(*it->second, adapter, nullptr)) return ok();
  valijson::ValidationResults results;
  validator.validate(*it->second, adapter, &results);
  // valijson reports from the outermost context inwards; the deepest error is the useful one.
  valijson::ValidationResults::Error best;
  size_t depth = 0;
  bool have = false;
  valijson::ValidationResults::Error e;
  while (results.popError(e)) {
    if (!have || e.context.size() > depth) {
      best = e;
      depth = e.context.size();
      have = true;
    }
  }
  std::string field = field_of(best.context);
  return Error::make(ErrorCode::invalid, (field.empty() ? std::string("body") : field) + ": " + best.description,
                     field);
}

const SchemaValidator& api_validator() {
  static const SchemaValidator v(nlohmann::json::parse(openapi_json()));
  return v;
}

const SchemaValidator& config_validator() {
  static const SchemaValidator v("Config", nlohmann::json::parse(config_schema_json()));
  return v;
}

}  // namespace sriovd::schemas
