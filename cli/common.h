// What every sriovd-cli command shares: the global options, exit codes, one request with its
// one-line error, and small JSON-to-text helpers for tables.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/client.h"

namespace sriovd::cli {

constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

struct Globals {
  std::string socket;
  std::string url;
  std::string token, cacert, cert, key;  // --token (else $SRIOVD_TOKEN); https: CA, client cert, key
  bool json_out = false;
  double wait_s = 0;
};

// Where and how to reach the daemon: --url or the socket, with the token and TLS files.
Endpoint endpoint_of(const Globals& g);

// --wait: retries /readyz until it answers 200 or the time is up, backing off 10 ms → 200 ms.
bool wait_ready(const Globals& g);

// The value at `key` as table text: strings as they are, booleans yes/no, null as `none`.
std::string str(const nlohmann::json& j, const char* key, const char* none = "-");
std::string join(const nlohmann::json& arr, const char* sep = ",", const char* none = "-");

// One request; on failure prints one line and returns the exit status through `status`.
// `extra_header` ("Name: value") is sent when not empty.
std::optional<nlohmann::json> call(const Globals& g, const std::string& method, const std::string& path,
                                   const std::string& body, int& status, const std::string& extra_header = {});
std::optional<nlohmann::json> fetch(const Globals& g, const std::string& path, int& status);
void print_json(const nlohmann::json& j);
// Sends a change; prints the device it returns (a line, or --json) or the one-line error.
int send(const Globals& g, const std::string& method, const std::string& path, const nlohmann::json& body);

}  // namespace sriovd::cli
