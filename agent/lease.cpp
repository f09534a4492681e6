#include "agent/lease.h"

#include <sys/random.h>

#include <algorithm>

#include "agent/vf_config_json.h"

namespace sriovd::agent {

namespace {

constexpr EnumTable<LeaseState, 4> kLeaseStates{{{
    {LeaseState::allocating, "allocating"},
    {LeaseState::active, "active"},
    {LeaseState::releasing, "releasing"},
    {LeaseState::released, "released"},
}}};

}  // namespace

std::string_view to_string(LeaseState s) { return kLeaseStates.name(s); }

bool ReleaseReport::clean() const {
  return std::none_of(items.begin(), items.end(),
                      [](const Item& i) { return i.status == "differs" || i.status == "unread"; });
}

void ReleaseReport::write(JsonWriter& w) const {
  w.begin_object();
  w.key("attributes").begin_object();
  for (const auto& i : items) {
    w.key(i.attribute).begin_object();
    w.key("before").raw(i.before.dump());
    if (!i.error.empty()) w.key("error").value(i.error);
    w.key("now").raw(i.now.dump());
    w.key("status").value(i.status);
    w.key("wanted").raw(i.wanted.dump());
    w.end_object();
  }
  w.end_object();
  w.key("clean").value(clean());
  w.key("reset_to").value(reset_to);
  w.end_object();
}

void Lease::write_attached_to(JsonWriter& w) const {
  w.key("attached_to");
  if (!attached) {
    w.null();
    return;
  }
  w.begin_object().key("config").value(attached->config).key("domain").value(attached->domain);
  w.key("live").value(attached->live).end_object();
}

void Lease::write_consumer(JsonWriter& w) const {
  w.key("consumer").begin_object().key("kind").value(consumer_kind).key("name").value(consumer_name).end_object();
}

std::string Lease::record() const {
  // Written without building nlohmann's tree: a lease is stored two or three times per
  // allocation or release.
  std::string out;
  out.reserve(384);
  JsonWriter w(out);
  w.begin_object();
  w.key("address").value(address.to_string());
  write_attached_to(w);
  write_consumer(w);
  w.key("created_at").value(created_at);
  if (!error.empty()) w.key("error").value(error);
  if (found_vf_config) w.key("found_vf_config").raw(vf_config_to_json(*found_vf_config).dump());
  if (!group_members.empty()) {
    w.key("group_members").begin_array();
    for (const auto& m : group_members) {
      w.begin_object();
      w.key("address").value(m.address.to_string());
      w.key("previous_driver").optional(m.previous_driver);
      w.end_object();
    }
    w.end_array();
  }
  w.key("id").value(id);
  w.key("idempotency_key").optional(idempotency_key);
  w.key("mode").value(to_string(mode));
  w.key("pool").optional(pool);
  w.key("previous_driver").optional(previous_driver);
  w.key("state").value(to_string(state));
  w.key("vf_config");
  if (vf_config) w.raw(vf_config_to_json(*vf_config).dump());
  else w.null();
  w.end_object();
  return out;
}

Result<Lease> Lease::from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j["id"].is_string() || !j["address"].is_string() || !j["state"].is_string())
    return Error::make(ErrorCode::io, "not a lease record");
  Lease l;
  l.id = j["id"].get<std::string>();
  auto state = from_string<LeaseState>(j["state"].get<std::string>());
  if (!state)
    return Error::make(ErrorCode::io, "lease " + l.id + ": unknown state '" + j["state"].get<std::string>() + "'");
  l.state = *state;
  auto a = PciAddress::parse(j["address"].get<std::string>());
  if (!a) return Error::make(ErrorCode::io, "lease " + l.id + ": bad address");
  l.address = *a;
  if (j.contains("pool") && j["pool"].is_string()) l.pool = j["pool"].get<std::string>();
  if (j.contains("consumer") && j["consumer"].is_object()) {
    l.consumer_kind = j["consumer"].value("kind", "");
    l.consumer_name = j["consumer"].value("name", "");
  }
  if (j.contains("vf_config") && !j["vf_config"].is_null()) {
    auto c = vf_config_from_json(j["vf_config"]);
    if (!c) return Error::make(ErrorCode::io, "lease " + l.id + ": " + c.error().message);
    l.vf_config = *c;
  }
  if (j.contains("found_vf_config") && j["found_vf_config"].is_object()) {
    auto c = vf_config_from_json(j["found_vf_config"]);
    if (!c) return Error::make(ErrorCode::io, "lease " + l.id + ": found_vf_config: " + c.error().message);
    l.found_vf_config = *c;
  }
  l.created_at = j.value("created_at", "");
  if (j.contains("idempotency_key") && j["idempotency_key"].is_string())
    l.idempotency_key = j["idempotency_key"].get<std::string>();
  if (j.contains("previous_driver") && j["previous_driver"].is_string())
    l.previous_driver = j["previous_driver"].get<std::string>();
  l.mode = j.value("mode", "vfio") == "netdev" ? PoolMode::netdev : PoolMode::vfio;
  if (j.contains("attached_to") && j["attached_to"].is_object()) {
    Attachment at;
    at.domain = j["attached_to"].value("domain", "");
    at.live = j["attached_to"].value("live", true);
    at.config = j["attached_to"].value("config", false);
    l.attached = at;
  }
  l.error = j.value("error", "");
  if (j.contains("group_members") && j["group_members"].is_array()) {
    for (const auto& m : j["group_members"]) {
      if (!m.is_object() || !m["address"].is_string())
        return Error::make(ErrorCode::io, "lease " + l.id + ": bad group member");
      auto ma = PciAddress::parse(m["address"].get<std::string>());
      if (!ma) return Error::make(ErrorCode::io, "lease " + l.id + ": bad group member address");
      Lease::GroupMember gm{*ma, std::nullopt};
      if (m.contains("previous_driver") && m["previous_driver"].is_string())
        gm.previous_driver = m["previous_driver"].get<std::string>();
      l.group_members.push_back(std::move(gm));
    }
  }
  return l;
}

std::string new_lease_id() {
  unsigned char b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = getrandom(b + got, sizeof b - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static const char* const hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

}  // namespace sriovd::agent

namespace sriovd {
template <>
std::optional<agent::LeaseState> from_string(std::string_view s) {
  return agent::kLeaseStates.parse(s);
}
}  // namespace sriovd
