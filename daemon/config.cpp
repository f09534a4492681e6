#include "daemon/config.h"

#include <cerrno>
#include <fstream>
#include <sstream>

#include "schemas/validator.h"

namespace sriovd::agent {

using nlohmann::json;

Result<Config> parse_config(std::string_view text, const std::string& origin) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    // nlohmann's message carries the line and column ("at line 3, column 5").
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    return Error::make(ErrorCode::invalid, origin + ": not JSON: " + what);
  } catch (const json::exception& e) {
    // Valid syntax nlohmann cannot hold, e.g. a number beyond a double (out_of_range 406).
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    return Error::make(ErrorCode::invalid, origin + ": " + what);
  }
  if (auto v = schemas::config_validator().validate("Config", doc); !v) {
    Error e = v.error();
    // The validator names a body field; in a file the path from the top reads better.
    std::string field = e.field.empty() ? "(top level)" : e.field;
    std::string msg = e.message;
    if (!e.field.empty() && msg.rfind(e.field + ": ", 0) == 0) msg = msg.substr(e.field.size() + 2);
    else if (msg.rfind("body: ", 0) == 0) msg = msg.substr(6);
    return Error::make(ErrorCode::invalid, origin + ": " + field + ": " + msg, e.field);
  }

  // The schema has checked every type and range below; reading cannot throw.
  Config c;
  c.source = origin;
  if (doc.contains("listen")) c.listen = doc["listen"].get<std::vector<std::string>>();
  if (doc.contains("state_dir")) c.state_dir = doc["state_dir"];
  if (doc.contains("sysfs_root")) c.sysfs_root = doc["sysfs_root"];
  if (doc.contains("log_level")) c.log_level = doc["log_level"];
  if (doc.contains("libvirt_uri")) c.libvirt_uri = doc["libvirt_uri"];
  if (doc.contains("tls")) {
    const auto& t = doc["tls"];
    c.tls.cert = t["cert"];
    c.tls.key = t["key"];
    c.tls.client_ca = t.value("client_ca", "");
  }
  if (doc.contains("auth")) {
    const auto& a = doc["auth"];
    c.auth.token_file = a.value("token_file", "");
    c.auth.reads_open = a.value("reads", "token") == "open";
  }
  if (doc.contains("limits")) {
    const auto& l = doc["limits"];
    c.limits.max_body_bytes = l.value("max_body_bytes", c.limits.max_body_bytes);
    c.limits.read_timeout_s = l.value("read_timeout_s", c.limits.read_timeout_s);
    c.limits.keep_alive_timeout_s = l.value("keep_alive_timeout_s", c.limits.keep_alive_timeout_s);
    c.limits.request_timeout_s = l.value("request_timeout_s", c.limits.request_timeout_s);
    c.limits.max_connections = l.value("max_connections", c.limits.max_connections);
  }
  if (doc.contains("pools")) {
    c.pools = doc["pools"];
    // Names identify pools: two with one name would make the second silently win.
    for (size_t i = 0; i < c.pools.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (c.pools[i]["name"] == c.pools[j]["name"])
          return Error::make(ErrorCode::invalid,
                             origin + ": pools." + std::to_string(i) + ".name: '" +
                                 c.pools[i]["name"].get<std::string>() + "' is declared twice",
                             "pools." + std::to_string(i) + ".name");
  }
  return c;
}

Result<Config> load_config(const std::string& path, bool optional) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int e = errno;
    if (optional && e == ENOENT) return Config{};
    return Error::sys(e, "reading configuration " + path);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Error::sys(errno ? errno : EIO, "reading configuration " + path);
  return parse_config(ss.str(), path);
}

}  // namespace sriovd::agent
