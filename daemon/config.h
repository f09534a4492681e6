// Config: what /etc/sriovd/sriovd.json (or --config FILE) says, parsed once and checked against
// schemas/config.schema.json before any field is read, so a bad file fails with the field and
// the reason ("limits.max_body_bytes: Value is above maximum"). Command-line flags override the
// file (see daemon/main.cpp). A plain value type: copy it freely; nothing here is shared.
//
// What a SIGHUP reloads: auth.token_file (re-read), log_level, pools. listen, tls, state_dir,
// sysfs_root and limits need a restart; the daemon says so in its log when they changed.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace sriovd::agent {

struct TlsConfig {
  std::string cert;       // PEM certificate chain for the tcp: listeners
  std::string key;        // PEM private key
  std::string client_ca;  // PEM CA bundle; set: clients must present a certificate it signed
  bool enabled() const { return !cert.empty(); }
  bool operator==(const TlsConfig&) const = default;
};

struct AuthConfig {
  std::string token_file;   // "name:token" lines; empty: no bearer tokens
  bool reads_open = false;  // "reads": "open": GETs need no token even with a token file
  bool operator==(const AuthConfig&) const = default;
};

struct LimitsConfig {
  size_t max_body_bytes = 1 << 20;  // larger bodies: 413
  int read_timeout_s = 10;          // one read of a request may wait this long
  int request_timeout_s = 10;       // a whole request must arrive within keep_alive_timeout_s + this
  int keep_alive_timeout_s = 5;     // an idle keep-alive connection is closed after this; SIGTERM
                                    // waits for idle ones at most this long (httplib does not
                                    // wake a worker waiting on an idle connection)
  int max_connections = 64;         // per listener; more wait in the kernel's listen backlog
  bool operator==(const LimitsConfig&) const = default;
};

struct Config {
  static constexpr const char* kDefaultPath = "/etc/sriovd/sriovd.json";

  std::vector<std::string> listen{"unix:/run/sriovd/sriovd.sock"};
  std::string state_dir = "/var/lib/sriovd";
  std::string sysfs_root = "/sys";
  std::string log_level = "info";  // trace debug info warning error critical
  std::string libvirt_uri = "qemu:///system";
  TlsConfig tls;
  AuthConfig auth;
  LimitsConfig limits;
  // Pools declared at start: an array of pool objects ({name, selectors{vendor_ids,
  // device_ids, drivers, pf_names, addresses, numa_nodes}, physical_network, device_type,
  // mode, policy}), schema-checked here and handed as they are to the pools code.
  nlohmann::json pools = nlohmann::json::array();
  std::string source;  // the file it came from; empty: defaults only
};

// Parses and validates a configuration document; `origin` names it in errors. Errors are
// `invalid` with `field` set to the JSON path of the offending value.
Result<Config> parse_config(std::string_view text, const std::string& origin);

// Reads `path`. A missing file is an error unless `optional` (then: the defaults), which is how
// the default path is read: a host without /etc/sriovd/sriovd.json runs on defaults.
Result<Config> load_config(const std::string& path, bool optional);

}  // namespace sriovd::agent
