// NameDb: vendor and device names from the PCI ID database, through libpci.
//
// libpci answers from two sources: udev's hwdb (a memory-mapped index, cheap to open) and the
// pci.ids text file (parsed whole on first use: ~15 ms). Names are asked of the hwdb first and
// of pci.ids only for ids the hwdb lacks, so pci.ids is usually never parsed. With an explicit
// `ids_path` only that file is used. Lookups are thread-safe (one mutex; libpci's pci_access is not) and cached
// per id. libpci's default error callback exits the process: we install our own, which records
// the failure and makes every lookup answer "no name".
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/mutex.h"

struct pci_access;

namespace sriovd::pci {

class NameDb {
 public:
  // `ids_path` overrides libpci's default pci.ids location (empty: libpci's default).
  explicit NameDb(std::string ids_path = {});
  ~NameDb();
  NameDb(const NameDb&) = delete;
  NameDb& operator=(const NameDb&) = delete;

  // Loads the database now (it is otherwise loaded by the first lookup): lets a caller overlap
  // the ~15 ms parse of pci.ids with other work.
  void preload() SRIOVD_EXCLUDES(mu_);

  // Lets go of the databases (the hwdb mapping, the parsed pci.ids) and keeps the names already
  // looked up; a later lookup of a new id opens them again. A daemon calls this after each scan.
  void close() SRIOVD_EXCLUDES(mu_);

  std::optional<std::string> vendor(uint16_t vendor_id) SRIOVD_EXCLUDES(mu_);
  std::optional<std::string> device(uint16_t vendor_id, uint16_t device_id) SRIOVD_EXCLUDES(mu_);

 private:
  std::optional<std::string> lookup(int flags, uint16_t v, uint16_t d) SRIOVD_REQUIRES(mu_);
  static std::optional<std::string> ask(pci_access* acc, int flags, uint16_t v, uint16_t d);

  Mutex mu_;
  std::string ids_path_;
  pci_access* hwdb_ SRIOVD_GUARDED_BY(mu_) = nullptr;  // hwdb only
  pci_access* ids_ SRIOVD_GUARDED_BY(mu_) = nullptr;   // pci.ids
  bool started_ SRIOVD_GUARDED_BY(mu_) = false;
  std::unordered_map<uint32_t, std::optional<std::string>> vendors_ SRIOVD_GUARDED_BY(mu_);
  std::unordered_map<uint32_t, std::optional<std::string>> devices_ SRIOVD_GUARDED_BY(mu_);
};

}  // namespace sriovd::pci
