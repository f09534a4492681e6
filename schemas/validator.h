// SchemaValidator: checks JSON values against the component schemas of the OpenAPI document with
// valijson. Schemas are compiled once at construction; validate() is const and thread-safe.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"

namespace valijson {
class Schema;
}

namespace sriovd::schemas {

class SchemaValidator {
 public:
  // `document` is an OpenAPI document; every entry of components.schemas becomes validatable.
  explicit SchemaValidator(const nlohmann::json& document);
  // A plain JSON Schema document (draft 7), validatable under `name`.
  SchemaValidator(const std::string& name, const nlohmann::json& schema);
  ~SchemaValidator();

  // ok, or an `invalid` error naming the first failing field ("num_vfs: ...") in `field`.
  Result<void> validate(const std::string& component, const nlohmann::json& value) const;

  bool has(const std::string& component) const { return schemas_.count(component) > 0; }

 private:
  std::map<std::string, std::unique_ptr<valijson::Schema>> schemas_;
};

// The validator for the compiled-in document, built on first use.
const SchemaValidator& api_validator();
// The validator for the configuration file: component "Config" (schemas/config.schema.json).
const SchemaValidator& config_validator();

}  // namespace sriovd::schemas
