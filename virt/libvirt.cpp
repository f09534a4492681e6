#include "virt/libvirt.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <thread>

#include "base/mutex.h"
#include "base/shared_library.h"
#include "virt/domain_xml.h"

namespace sriovd::virt {

namespace {

// libvirt is loaded on the first connection, not at start: libvirt.so and what it pulls in
// (gnutls, glib, ICU, libssh, curl, ...) would otherwise be mapped and touched by every daemon,
// most of which never attach a device. These are the functions sriovd calls.
// One X per function, packed as written: clang-format reflows this list differently every run.
// clang-format off
#define SRIOVD_LIBVIRT_FUNCTIONS(X)                                                                 \
  X(virConnectClose) X(virConnectDomainEventDeregisterAny) X(virConnectDomainEventRegisterAny)     \
  X(virConnectIsAlive) X(virConnectListAllDomains) X(virConnectOpen) X(virConnectSetKeepAlive)     \
  X(virDomainAttachDeviceFlags) X(virDomainDetachDeviceFlags) X(virDomainFree) X(virDomainGetName) \
  X(virDomainGetXMLDesc) X(virDomainIsActive) X(virDomainIsPersistent) X(virDomainLookupByName)    \
  X(virDomainLookupByUUIDString) X(virEventRegisterDefaultImpl) X(virEventRunDefaultImpl)          \
  X(virGetLastError) X(virResetLastError) X(virSetErrorFunc)
// clang-format on

struct Api {
  SRIOVD_DECLARE_FUNCTIONS(SRIOVD_LIBVIRT_FUNCTIONS)
};

// The loaded library; set once, inside load()'s first call, and never unloaded (its event loop
// thread runs for the rest of the process). Only code reached through a connection uses it.
const Api* api = nullptr;

// libvirt's default error function prints every error to stderr; ours drops it (the error is
// still recorded per thread for virGetLastError, which is how it reaches the caller).
void quiet_error(void*, virErrorPtr) {}

// Loads libvirt, registers the default event loop implementation and runs it on a detached
// thread, once per process. libvirt requires the registration before the first connection is
// opened for events and keepalives to work on it. Without libvirt.so.0 every call fails with
// libvirt_unreachable, saying so.
Result<void> load() {
  auto loaded = SharedLibrary::load_once<Api>("libvirt.so.0", "libvirt0", [](const SharedLibrary& lib, Api& t) {
    if (auto r = SRIOVD_RESOLVE_FUNCTIONS(lib, t, SRIOVD_LIBVIRT_FUNCTIONS); !r) return r;
    api = &t;
    t.virSetErrorFunc(nullptr, quiet_error);
    if (t.virEventRegisterDefaultImpl() < 0) return ok();  // then connecting reports the missing loop
    std::thread([&t] {
      for (;;) t.virEventRunDefaultImpl();
    }).detach();
    return ok();
  });
  if (!loaded) return Error::because(ErrorCode::unavailable, "libvirt_unreachable", loaded.error().message);
  return ok();
}

// Turns the thread's last libvirt error into an Error: "<what>: <libvirt's message>", with a
// code and reason from libvirt's error number; `fallback` is the reason for numbers with no
// finer meaning. Resets libvirt's error.
Error last_error(const std::string& what, const char* fallback, ErrorCode fallback_code = ErrorCode::io) {
  virErrorPtr e = api->virGetLastError();
  std::string message = e && e->message ? e->message : "unknown libvirt error";
  // XML errors come with the offending line and a caret under it: keep the first line.
  if (auto nl = message.find('\n'); nl != std::string::npos) message.resize(nl);
  ErrorCode code = fallback_code;
  std::string reason = fallback;
  if (e) {
    switch (e->code) {
      case VIR_ERR_NO_DOMAIN:
        code = ErrorCode::not_found;
        reason = "domain_not_found";
        break;
      case VIR_ERR_DEVICE_MISSING:
        code = ErrorCode::not_found;
        reason = "device_not_attached";
        break;
      case VIR_ERR_NO_CONNECT:
      case VIR_ERR_INVALID_CONN:
      case VIR_ERR_AUTH_FAILED:
      case VIR_ERR_AUTH_CANCELLED:
      case VIR_ERR_AUTH_UNAVAILABLE:
      case VIR_ERR_RPC:
        code = ErrorCode::unavailable;
        reason = "libvirt_unreachable";
        break;
      case VIR_ERR_XML_ERROR:
      case VIR_ERR_XML_DETAIL:
      case VIR_ERR_XML_INVALID_SCHEMA:
        code = ErrorCode::invalid;
        reason = "invalid_xml";
        break;
      case VIR_ERR_NO_SUPPORT:
      case VIR_ERR_ARGUMENT_UNSUPPORTED:
      case VIR_ERR_CONFIG_UNSUPPORTED:
        code = ErrorCode::unsupported;
        reason = "unsupported";
        break;
      case VIR_ERR_OPERATION_INVALID:
        // e.g. "PCI device ... is in use by driver QEMU, domain vm2"
        code = ErrorCode::conflict;
        break;
      default:
        // The connection to the daemon broke during the call ("client socket is closed",
        // "End of file while reading data").
        if (e->domain == VIR_FROM_RPC || e->domain == VIR_FROM_REMOTE) {
          code = ErrorCode::unavailable;
          reason = "libvirt_unreachable";
        }
        break;
    }
  }
  api->virResetLastError();
  return Error::because(code, std::move(reason), what + ": " + message);
}

struct DomainFree {
  void operator()(virDomain* d) const { api->virDomainFree(d); }
};
using DomainPtr = std::unique_ptr<virDomain, DomainFree>;

bool looks_like_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (c == '-')) return false;
    if (!dash && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

std::string take(char* s) {
  std::string out = s ? s : "";
  std::free(s);
  return out;
}

unsigned int affect(Libvirt::Flags f) {
  unsigned int flags = 0;
  if (f.live) flags |= VIR_DOMAIN_AFFECT_LIVE;
  if (f.config) flags |= VIR_DOMAIN_AFFECT_CONFIG;
  return flags;
}

// What a live detach is waiting for; shared with the event callbacks (which run on the event
// loop thread and may outlive the wait until libvirt frees their opaque pointer).
struct RemovalWait {
  std::string alias;
  Mutex mu;
  CondVar cv;
  enum class State { pending, removed, failed } state SRIOVD_GUARDED_BY(mu) = State::pending;
};

void on_removal(const char* alias, void* opaque, RemovalWait::State state) {
  auto& wait = **static_cast<std::shared_ptr<RemovalWait>*>(opaque);
  if (!alias || wait.alias != alias) return;
  {
    MutexLock lock(wait.mu);
    if (wait.state == RemovalWait::State::pending) wait.state = state;
  }
  wait.cv.notify_all();
}

void on_removed(virConnectPtr, virDomainPtr, const char* alias, void* opaque) {
  on_removal(alias, opaque, RemovalWait::State::removed);
}

void on_removal_failed(virConnectPtr, virDomainPtr, const char* alias, void* opaque) {
  on_removal(alias, opaque, RemovalWait::State::failed);
}

void free_wait(void* opaque) { delete static_cast<std::shared_ptr<RemovalWait>*>(opaque); }

}  // namespace

// A reference to an open connection; the last holder closes it.
struct Libvirt::Conn {
  virConnectPtr ptr = nullptr;
  ~Conn() {
    if (ptr) api->virConnectClose(ptr);
  }
};

struct Libvirt::State {
  Mutex mu;
  std::shared_ptr<Conn> conn SRIOVD_GUARDED_BY(mu);  // null or possibly dead
  // The last connect's failure and when it came; empty after a successful connect.
  std::optional<Error> failure SRIOVD_GUARDED_BY(mu);
  std::chrono::steady_clock::time_point failed_at SRIOVD_GUARDED_BY(mu);
};

namespace {

Result<virConnectPtr> open_connection(const std::string& uri) {
  virConnectPtr c = api->virConnectOpen(uri.c_str());
  if (!c) {
    Error e = last_error("connecting to libvirt at " + uri, "libvirt_unreachable", ErrorCode::unavailable);
    e.code = ErrorCode::unavailable;
    e.reason = "libvirt_unreachable";
    return e;
  }
  // Keepalive probes (every 5 s, 3 unanswered close it) notice a daemon that vanished without
  // closing the socket. Drivers without keepalive (test:///) refuse; that is fine.
  if (api->virConnectSetKeepAlive(c, 5, 3) < 0) api->virResetLastError();
  return c;
}

}  // namespace

Libvirt::Libvirt(std::string uri, std::chrono::milliseconds recheck)
    : uri_(std::move(uri)), recheck_(recheck), state_(std::make_unique<State>()) {}

Libvirt::~Libvirt() = default;

Result<std::unique_ptr<Libvirt>> Libvirt::connect(const std::string& uri) {
  std::unique_ptr<Libvirt> lv(new Libvirt(uri, std::chrono::milliseconds(0)));
  auto c = lv->connection();
  if (!c) return std::move(c).error();
  return lv;
}

std::unique_ptr<Libvirt> Libvirt::deferred(const std::string& uri, std::chrono::milliseconds recheck) {
  return std::unique_ptr<Libvirt>(new Libvirt(uri, recheck));
}

Result<std::shared_ptr<Libvirt::Conn>> Libvirt::connection(bool may_reuse_failure) {
  if (auto loaded = load(); !loaded) return std::move(loaded).error();
  MutexLock lock(state_->mu);
  if (state_->conn && api->virConnectIsAlive(state_->conn->ptr) == 1) return state_->conn;
  const auto now = std::chrono::steady_clock::now();
  if (may_reuse_failure && state_->failure && now - state_->failed_at < recheck_) return *state_->failure;
  // Gone (daemon restarted, keepalive timeout): open afresh. Holders of the old one keep it
  // until they are done; their calls fail with libvirt_unreachable.
  api->virResetLastError();
  auto opened = open_connection(uri_);
  if (!opened) {
    state_->failure = opened.error();
    state_->failed_at = now;
    return std::move(opened).error();
  }
  state_->failure.reset();
  auto conn = std::make_shared<Conn>();
  conn->ptr = *opened;
  state_->conn = conn;
  return conn;
}

namespace {

Result<DomainPtr> lookup(virConnectPtr c, const std::string& name) {
  virDomainPtr d = api->virDomainLookupByName(c, name.c_str());
  if (!d && looks_like_uuid(name)) {
    api->virResetLastError();
    d = api->virDomainLookupByUUIDString(c, name.c_str());
  }
  if (!d) {
    Error e = last_error("looking up domain '" + name + "'", "libvirt_failed");
    if (e.reason == "domain_not_found") e.message = "no libvirt domain named '" + name + "'";
    return e;
  }
  return DomainPtr(d);
}

Result<std::string> xml_of(virDomainPtr d, bool inactive, const std::string& name) {
  char* x = api->virDomainGetXMLDesc(d, inactive ? VIR_DOMAIN_XML_INACTIVE : 0);
  if (!x) return last_error("reading the definition of domain '" + name + "'", "libvirt_failed");
  return take(x);
}

Error flags_error() {
  return Error::because(ErrorCode::invalid, "invalid_flags",
                        "neither the live nor the persistent definition was asked for");
}

// Refines an attach/detach failure: a live change refused because the domain is off.
Error refine(Error e, virDomainPtr d, Libvirt::Flags flags, const std::string& name) {
  if (flags.live && e.code == ErrorCode::conflict && api->virDomainIsActive(d) == 0) {
    e.reason = "domain_not_running";
    e.message += " (domain '" + name + "' is off; a live change needs it running)";
  }
  api->virResetLastError();
  return e;
}

}  // namespace

Result<void> Libvirt::attach(const std::string& domain, const std::string& device_xml, Flags flags) {
  if (!flags.live && !flags.config) return flags_error();
  auto conn = connection();
  if (!conn) return std::move(conn).error();
  auto dom = lookup((*conn)->ptr, domain);
  if (!dom) return std::move(dom).error();
  if (api->virDomainAttachDeviceFlags(dom->get(), device_xml.c_str(), affect(flags)) < 0) {
    return refine(last_error("attaching a device to domain '" + domain + "'", "attach_failed"), dom->get(), flags,
                  domain);
  }
  return ok();
}

Result<std::string> Libvirt::domain_xml(const std::string& domain, bool inactive) {
  auto conn = connection();
  if (!conn) return std::move(conn).error();
  auto dom = lookup((*conn)->ptr, domain);
  if (!dom) return std::move(dom).error();
  return xml_of(dom->get(), inactive, domain);
}

Result<void> Libvirt::detach(const std::string& domain, const std::string& device_xml, Flags flags,
                             std::chrono::milliseconds deadline) {
  if (!flags.live && !flags.config) return flags_error();
  const auto until = std::chrono::steady_clock::now() + deadline;
  auto conn = connection();
  if (!conn) return std::move(conn).error();
  virConnectPtr c = (*conn)->ptr;
  auto dom = lookup(c, domain);
  if (!dom) return std::move(dom).error();
  const std::string what = "detaching a device from domain '" + domain + "'";

  if (!flags.live) {
    if (api->virDomainDetachDeviceFlags(dom->get(), device_xml.c_str(), affect(flags)) < 0) {
      return last_error(what, "detach_failed");
    }
    return ok();
  }

  // The alias libvirt will name in DEVICE_REMOVED: the one in the XML we were given (device_xml()
  // always sets one), else the alias of the live device with the same source.
  auto given = parse_devices(device_xml);
  if (!given) {
    return Error::because(ErrorCode::invalid, "invalid_xml", what + ": " + given.error().message);
  }
  if (given->size() != 1) {
    return Error::because(ErrorCode::invalid, "invalid_xml", what + ": the XML is not one device element");
  }
  std::optional<std::string> alias = given->front().alias;
  if (!alias) {
    if (api->virDomainIsActive(dom->get()) == 0) {
      return Error::because(ErrorCode::conflict, "domain_not_running",
                            what + ": domain '" + domain + "' is not running (a live change needs a running domain)");
    }
    auto live = xml_of(dom->get(), false, domain);
    if (!live) return std::move(live).error();
    auto devices = parse_devices(*live);
    if (!devices) return Error::because(ErrorCode::io, "libvirt_failed", what + ": " + devices.error().message);
    for (const auto& d : *devices) {
      bool match = same_source(d, given->front()) ||
                   (given->front().mac && d.element == given->front().element && d.mac == given->front().mac);
      if (match && d.alias) alias = d.alias;
    }
    if (!alias) {
      return Error::because(ErrorCode::not_found, "device_not_attached",
                            what + ": the running domain has no such device");
    }
  }

  // Listen before asking, so the event cannot come before we listen. The opaque pointer is
  // freed by libvirt when the callback is gone, which may be after we return.
  auto wait = std::make_shared<RemovalWait>();
  wait->alias = *alias;
  int removed_id = api->virConnectDomainEventRegisterAny(c, dom->get(), VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                                         VIR_DOMAIN_EVENT_CALLBACK(on_removed),
                                                         new std::shared_ptr<RemovalWait>(wait), free_wait);
  if (removed_id < 0) return last_error(what + ": listening for device removal", "libvirt_failed");
  int failed_id = api->virConnectDomainEventRegisterAny(c, dom->get(), VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED,
                                                        VIR_DOMAIN_EVENT_CALLBACK(on_removal_failed),
                                                        new std::shared_ptr<RemovalWait>(wait), free_wait);
  if (failed_id < 0) api->virResetLastError();  // older daemons: we still see removals and timeouts
  struct Deregister {
    virConnectPtr c;
    int a, b;
    ~Deregister() {
      if (a >= 0) api->virConnectDomainEventDeregisterAny(c, a);
      if (b >= 0) api->virConnectDomainEventDeregisterAny(c, b);
      api->virResetLastError();
    }
  } deregister{c, removed_id, failed_id};

  // For PCI devices the QEMU driver itself waits a few seconds for the guest before returning
  // 0 with the removal still pending: success here means "asked", the event means "done".
  if (api->virDomainDetachDeviceFlags(dom->get(), device_xml.c_str(), affect(flags)) < 0) {
    return refine(last_error(what, "detach_failed"), dom->get(), flags, domain);
  }

  RemovalWait::State state;
  {
    MutexLock lock(wait->mu);
    wait->cv.wait_until(lock, until,
                        [&]() SRIOVD_REQUIRES(wait->mu) { return wait->state != RemovalWait::State::pending; });
    state = wait->state;
  }
  if (state == RemovalWait::State::removed) return ok();
  if (state == RemovalWait::State::failed) {
    return Error::because(ErrorCode::conflict, "detach_failed",
                          what + ": the guest refused to release device '" + *alias + "'");
  }
  // No event by the deadline. The device may still have gone (the domain stopped, or the
  // connection was replaced and the event lost): believe the live definition.
  if (api->virDomainIsActive(dom->get()) == 0) {
    api->virResetLastError();
    return ok();
  }
  if (auto live = xml_of(dom->get(), false, domain)) {
    if (auto devices = parse_devices(*live)) {
      bool present =
          std::any_of(devices->begin(), devices->end(), [&](const DomainDevice& d) { return d.alias == alias; });
      if (!present) return ok();
    }
  }
  auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - (until - deadline));
  return Error::because(ErrorCode::conflict, "detach_timeout",
                        what + ": device '" + *alias + "' still attached " + std::to_string(waited.count()) +
                            " ms after the request (deadline " + std::to_string(deadline.count()) +
                            " ms); the guest has not released it and the removal stays pending");
}

Result<std::vector<DomainUse>> Libvirt::domains_using(const PciAddress& address,
                                                      const std::vector<std::string>& netdevs) {
  auto conn = connection(/*may_reuse_failure=*/true);
  if (!conn) return std::move(conn).error();
  virDomainPtr* list = nullptr;
  int n = api->virConnectListAllDomains((*conn)->ptr, &list, 0);
  if (n < 0) return last_error("listing libvirt domains", "libvirt_failed");
  std::vector<DomainPtr> domains;
  domains.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) domains.emplace_back(list[i]);
  std::free(list);

  auto uses = [&](const std::string& xml) {
    auto devices = parse_devices(xml);
    if (!devices) return false;
    return std::any_of(devices->begin(), devices->end(), [&](const DomainDevice& d) {
      if (d.kind == DomainDevice::Kind::HostdevPci || d.kind == DomainDevice::Kind::HostdevInterface) {
        return d.address == address;
      }
      if (d.kind == DomainDevice::Kind::Direct && d.netdev) {
        return std::find(netdevs.begin(), netdevs.end(), *d.netdev) != netdevs.end();
      }
      return false;
    });
  };

  std::vector<DomainUse> out;
  for (const auto& d : domains) {
    const char* name = api->virDomainGetName(d.get());
    DomainUse use;
    use.domain = name ? name : "";
    use.running = api->virDomainIsActive(d.get()) == 1;
    // A domain that vanishes between the listing and these reads uses nothing any more.
    if (use.running) {
      char* x = api->virDomainGetXMLDesc(d.get(), 0);
      if (x) use.live = uses(take(x));
    }
    if (api->virDomainIsPersistent(d.get()) == 1) {
      char* x = api->virDomainGetXMLDesc(d.get(), VIR_DOMAIN_XML_INACTIVE);
      if (x) use.config = uses(take(x));
    }
    api->virResetLastError();
    if (use.live || use.config) out.push_back(std::move(use));
  }
  std::sort(out.begin(), out.end(), [](const DomainUse& a, const DomainUse& b) { return a.domain < b.domain; });
  return out;
}

}  // namespace sriovd::virt
