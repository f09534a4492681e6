// Internal to agent/: the journalled kernel changes every mutation is made of.
//
// An Action is one change to the kernel (a sysfs write or one VF attribute group over
// rtnetlink) that can be written to the operation journal as JSON. The Applier takes actions one
// by one, journalling each one's undo before taking it, and undoes the taken ones in reverse.
#pragma once

#include <spdlog/spdlog.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <ranges>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/vf_config_json.h"
#include "pci/recipes.h"

namespace sriovd::agent {

using nlohmann::json;

// One change to the kernel: a sysfs write, or a VF attribute group over rtnetlink.
struct Action {
  std::string path;  // write: relpath under the sysfs root
  std::string value;
  std::string ifname;  // set_vf, set_mtu
  uint32_t vf = 0;
  std::optional<VfConfig> config;
  std::optional<uint32_t> mtu;  // set_mtu

  static Action write(std::string path, std::string value) {
    return {std::move(path), std::move(value), {}, 0, {}, {}};
  }
  static Action set_vf(std::string ifname, uint32_t vf, VfConfig c) { return {{}, {}, std::move(ifname), vf, c, {}}; }
  static Action set_mtu(std::string ifname, uint32_t mtu) { return {{}, {}, std::move(ifname), 0, {}, mtu}; }

  json to_json() const {
    if (config) return {{"set_vf", ifname}, {"vf", vf}, {"config", vf_config_to_json(*config)}};
    if (mtu) return {{"set_mtu", ifname}, {"mtu", *mtu}};
    return {{"write", path}, {"value", value}};
  }
  static std::optional<Action> from_json(const json& j) {
    if (j.contains("write") && j["write"].is_string() && j.contains("value") && j["value"].is_string())
      return write(j["write"].get<std::string>(), j["value"].get<std::string>());
    if (j.contains("set_vf") && j["set_vf"].is_string() && j.contains("vf") && j["vf"].is_number_unsigned()) {
      auto c = vf_config_from_json(j.value("config", json::object()));
      if (!c) return std::nullopt;
      return set_vf(j["set_vf"].get<std::string>(), j["vf"].get<uint32_t>(), *c);
    }
    if (j.contains("set_mtu") && j["set_mtu"].is_string() && j.contains("mtu") && j["mtu"].is_number_unsigned())
      return set_mtu(j["set_mtu"].get<std::string>(), j["mtu"].get<uint32_t>());
    return std::nullopt;
  }
  std::string describe() const {
    if (config) return "set VF " + std::to_string(vf) + " of " + ifname + " " + vf_config_to_json(*config).dump();
    if (mtu) return "set the MTU of " + ifname + " to " + std::to_string(*mtu);
    return "write '" + value + "' to " + path;
  }
};

inline Result<void> perform(kernel::Kernel& k, const Action& a) {
  if (a.config) return k.set_vf(a.ifname, a.vf, *a.config);
  if (a.mtu) return k.set_mtu(a.ifname, *a.mtu);
  return k.write_attr(a.path, a.value);
}

// Applies actions, journalling each one's undo before taking it, and undoes them in reverse.
class Agent::Applier {
 public:
  // Opens the operation's journal entry in `begin`'s transaction (it returns the entry's id):
  // together with the first step, or with finish() when no step is taken. Nothing is written
  // before the first change to the kernel, and an operation that changes nothing commits once.
  using Begin = std::function<Result<int64_t>(StateStore::Tx&)>;
  Applier(kernel::Kernel& k, StateStore& s, Begin begin) : k_(k), s_(s), begin_(std::move(begin)) {}
  // An entry opened already.
  Applier(kernel::Kernel& k, StateStore& s, int64_t op) : k_(k), s_(s), op_(op) {}

  Result<void> run(const Action& action, std::vector<Action> undo) {
    json step = {{"do", action.to_json()}, {"undo", json::array()}};
    for (const auto& u : undo) step["undo"].push_back(u.to_json());
    if (auto r = journal(step.dump()); !r) return r;
    if (auto r = perform(k_, action); !r) {
      spdlog::debug("operation {}: {} failed: {}", op(), action.describe(), r.error().message);
      return r;
    }
    undo_.push_back(std::move(undo));
    return ok();
  }
  // A step of one of pci/'s recipes, journalled and taken as above.
  Result<void> run(const pci::Step& step) {
    std::vector<Action> undo;
    undo.reserve(step.undo.size());
    for (const auto& u : step.undo) undo.push_back(Action::write(u.path, u.value));
    return run(Action::write(step.change.path, step.change.value), std::move(undo));
  }
  // This Applier as the runner of a pci/ recipe.
  pci::StepRunner runner() {
    return [this](const pci::Step& step) { return run(step); };
  }

  // Ends the operation as `state` (done, failed), with what `fn` writes, in one transaction
  // (which opens the entry first when no step did). With Durability::group the caller syncs it
  // (StateStore::sync_through) before it answers, once it has let go of the agent's lock.
  Result<void> finish(OperationState state, const std::string& error,
                      const std::function<Result<void>(StateStore::Tx&)>& fn = {},
                      Durability durability = Durability::power_loss) {
    return with_entry(
        [&](StateStore::Tx& tx) -> Result<void> {
          if (fn)
            if (auto r = fn(tx); !r) return r;
          return tx.finish_operation(op(), state, error);  // with_entry has opened it
        },
        durability);
  }

  // Undoes the taken steps, newest first. Undo actions restore old values, so they are safe to
  // repeat; a failing one is logged and the rest still run.
  std::vector<std::string> rollback() {
    std::vector<std::string> failures;
    for (auto& step : std::ranges::reverse_view(undo_))
      for (const auto& u : step)
        if (auto r = perform(k_, u); !r) failures.push_back(u.describe() + ": " + r.error().message);
    undo_.clear();
    for (const auto& f : failures) spdlog::error("operation {}: rollback step failed: {}", op(), f);
    return failures;
  }

  // The entry's id; 0 while it is not open.
  int64_t op() const { return op_.value_or(0); }
  size_t taken() const { return undo_.size(); }

 private:
  Result<void> journal(const std::string& step) {
    if (op_) return s_.add_step(*op_, step);
    // The entry and its first step in one commit (written, not synced: see Durability).
    return with_entry([&](StateStore::Tx& tx) { return tx.add_step(op(), step); }, Durability::process_crash);
  }
  // `body` in a transaction that first opens the entry when it is not open yet; if the
  // transaction fails, the entry stays unopened.
  Result<void> with_entry(const std::function<Result<void>(StateStore::Tx&)>& body, Durability d) {
    const bool opening = !op_;
    auto r = s_.transaction(
        [&](StateStore::Tx& tx) -> Result<void> {
          if (opening) {
            auto id = begin_(tx);
            if (!id) return std::move(id).error();
            op_ = *id;
          }
          return body(tx);
        },
        d);
    if (!r && opening) op_.reset();
    return r;
  }

  kernel::Kernel& k_;
  StateStore& s_;
  Begin begin_;
  std::optional<int64_t> op_;
  std::vector<std::vector<Action>> undo_;
};

}  // namespace sriovd::agent
