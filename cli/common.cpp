#include "cli/common.h"

#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/client.h"

namespace sriovd::cli {

Endpoint endpoint_of(const Globals& g) {
  Endpoint e = Endpoint::resolve(g.url, g.socket);
  if (!g.token.empty()) e.token = g.token;
  e.cacert = g.cacert;
  e.cert = g.cert;
  e.key = g.key;
  return e;
}

using nlohmann::json;

// --wait: a client started together with the daemon (scripts, units ordered After=) retries
// until /readyz answers 200 or the time is up, backing off from 10 ms to 200 ms.
bool wait_ready(const Globals& g) {
  Client client(endpoint_of(g));
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(g.wait_s);
  auto delay = std::chrono::milliseconds(10);
  for (;;) {
    auto r = client.request("GET", "/readyz");
    if (r && r->status == 200) return true;
    if (std::chrono::steady_clock::now() + delay > end) return false;
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(200));
  }
}

std::string str(const json& j, const char* key, const char* none) {
  if (!j.contains(key) || j[key].is_null()) return none;
  if (j[key].is_string()) return j[key].get<std::string>();
  if (j[key].is_boolean()) return j[key].get<bool>() ? "yes" : "no";
  return j[key].dump();
}

std::string join(const json& arr, const char* sep, const char* none) {
  if (!arr.is_array() || arr.empty()) return none;
  std::string out;
  for (const auto& v : arr) {
    if (!out.empty()) out += sep;
    out += v.is_string() ? v.get<std::string>() : v.dump();
  }
  return out;
}

// Fetches `path`; on failure prints one line and returns the exit status through `status`.
// One request; on failure prints one line and returns the exit status through `status`.
std::optional<json> call(const Globals& g, const std::string& method, const std::string& path, const std::string& body,
                         int& status, const std::string& extra_header) {
  Client client(endpoint_of(g));
  auto r = client.request(method, path, body, "application/json", extra_header);
  if (!r) {
    std::fprintf(stderr, "sriovd-cli: %s\n", r.error().message.c_str());
    status = kExitUnreachable;
    return std::nullopt;
  }
  if (r->status >= 400) {
    std::fprintf(stderr, "sriovd-cli: %s\n", error_message(*r).c_str());
    status = kExitRefused;
    return std::nullopt;
  }
  if (r->status == 204) {  // No Content (DELETE /v1/pools/{name}): nothing to parse
    status = 0;
    return json();
  }
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) {
    std::fprintf(stderr, "sriovd-cli: sriovd answered with a body that is not JSON\n");
    status = kExitRefused;
    return std::nullopt;
  }
  status = 0;
  return j;
}

std::optional<json> fetch(const Globals& g, const std::string& path, int& status) {
  return call(g, "GET", path, {}, status);
}

void print_json(const json& j) { std::printf("%s\n", j.dump(2).c_str()); }

// Sends a change; prints the device it returns (a line, or --json) or the one-line error.
int send(const Globals& g, const std::string& method, const std::string& path, const json& body) {
  int status;
  auto answer = call(g, method, path, body.dump(), status);
  if (!answer) return status;
  const json& j = *answer;
  if (g.json_out) {
    print_json(j);
    return 0;
  }
  if (j.is_object() && j.contains("address")) {
    std::string line = j["address"].get<std::string>() + ": driver " +
                       (j["driver"].is_string() ? j["driver"].get<std::string>() : std::string("none"));
    if (j["sriov"].is_object())
      line += ", " + j["sriov"]["num_vfs"].dump() + " of " + j["sriov"]["total_vfs"].dump() + " VFs";
    if (j["vf_config"].is_object()) line += ", " + j["vf_config"].dump();
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

}  // namespace sriovd::cli
