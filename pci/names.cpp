#include "pci/names.h"

extern "C" {
#include <pci/pci.h>
}

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace sriovd::pci {

namespace {

// libpci calls a->error() on fatal problems and expects it not to return (its default calls
// exit(1)). For name lookups it only does so for out-of-memory and bad flags, so we abort with
// a message rather than let a library end the daemon silently. Warnings (a missing pci.ids)
// are harmless: names stay null.
void quiet(char*, ...) {}
__attribute__((noreturn)) void fatal(char* msg, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, msg);
  std::vsnprintf(buf, sizeof buf, msg, ap);
  va_end(ap);
  std::fprintf(stderr, "sriovd: libpci: %s\n", buf);
  std::abort();
}

pci_access* new_access(const char* ids_file) {
  pci_access* acc = pci_alloc();
  if (!acc) return nullptr;
  acc->error = fatal;
  acc->warning = quiet;
  acc->debug = quiet;
  if (ids_file) pci_set_name_list_path(acc, const_cast<char*>(ids_file), 0);
  // No pci_init(): name lookups need no access method, and probing one would read the real
  // host's /sys or /proc whatever our sysfs root is.
  return acc;
}

// An id file that cannot exist: libpci marks the file as failed and answers from the hwdb.
constexpr char kNoFile[] = "/nonexistent/sriovd/pci.ids";

}  // namespace

NameDb::NameDb(std::string ids_path) : ids_path_(std::move(ids_path)) {}

NameDb::~NameDb() {
  if (hwdb_) pci_cleanup(hwdb_);
  if (ids_) pci_cleanup(ids_);
}

std::optional<std::string> NameDb::ask(pci_access* acc, int flags, uint16_t v, uint16_t d) {
  if (!acc) return std::nullopt;
  char buf[256];
  // PCI_LOOKUP_NO_NUMBERS: NULL rather than "Device 1593" when the id is unknown.
  const char* name = flags & PCI_LOOKUP_DEVICE
                         ? pci_lookup_name(acc, buf, sizeof buf, flags | PCI_LOOKUP_NO_NUMBERS, v, d)
                         : pci_lookup_name(acc, buf, sizeof buf, flags | PCI_LOOKUP_NO_NUMBERS, v);
  if (!name) return std::nullopt;
  return std::string(name);
}

std::optional<std::string> NameDb::lookup(int flags, uint16_t v, uint16_t d) {
  if (!started_) {
    started_ = true;
    if (ids_path_.empty()) hwdb_ = new_access(kNoFile);
    ids_ = new_access(ids_path_.empty() ? nullptr : ids_path_.c_str());
  }
  if (auto n = ask(hwdb_, flags, v, d)) return n;
  // The hwdb was asked already (or must not be, with an explicit file).
  return ask(ids_, flags | PCI_LOOKUP_NO_HWDB, v, d);
}

void NameDb::close() {
  MutexLock lock(mu_);
  if (hwdb_) pci_cleanup(hwdb_);
  if (ids_) pci_cleanup(ids_);
  hwdb_ = ids_ = nullptr;
  started_ = false;
}

void NameDb::preload() {
  MutexLock lock(mu_);
  // Opens the first source that answers: the hwdb or, without one, pci.ids (parsed whole).
  // Intel's vendor id is in every PCI ID database.
  (void)lookup(PCI_LOOKUP_VENDOR, 0x8086, 0);
}

std::optional<std::string> NameDb::vendor(uint16_t vendor_id) {
  MutexLock lock(mu_);
  auto it = vendors_.find(vendor_id);
  if (it != vendors_.end()) return it->second;
  auto name = lookup(PCI_LOOKUP_VENDOR, vendor_id, 0);
  vendors_.emplace(vendor_id, name);
  return name;
}

std::optional<std::string> NameDb::device(uint16_t vendor_id, uint16_t device_id) {
  MutexLock lock(mu_);
  uint32_t key = static_cast<uint32_t>(vendor_id) << 16 | device_id;
  auto it = devices_.find(key);
  if (it != devices_.end()) return it->second;
  auto name = lookup(PCI_LOOKUP_DEVICE, vendor_id, device_id);
  devices_.emplace(key, name);
  return name;
}

}  // namespace sriovd::pci
