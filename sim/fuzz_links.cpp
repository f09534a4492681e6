// libFuzzer target for simtree::join_normal, which resolves the relative links of a sysfs tree
// (bus/pci/devices/<BDF>, class/net/<name>, <netdev>/device) lexically: any link text against a
// directory in normal form (as its callers pass: a constant, or an earlier result) must give
// nullopt or a relative path without ".", ".." or empty components that stays what it is when
// resolved again. join_normal keeps the directory as given ("zx/" + "z0" is "zx//z0"), so the
// directory text of an input is put in normal form first.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sim/sim_tree.h"

using sriovd::simtree::join_normal;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  // The first line is the directory, the rest the link's text.
  const size_t nl = s.find('\n');
  auto dir = join_normal("", nl == std::string_view::npos ? std::string_view("bus/pci/devices") : s.substr(0, nl));
  if (!dir) return 0;
  const std::string_view link = nl == std::string_view::npos ? s : s.substr(nl + 1);
  auto r = join_normal(*dir, link);
  if (!r) return 0;
  if (!r->empty() && (r->front() == '/' || r->back() == '/')) std::abort();
  for (std::string_view rest = *r; !rest.empty();) {
    const size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    if (part.empty() || part == "." || part == "..") std::abort();
    rest.remove_prefix(slash == std::string_view::npos ? rest.size() : slash + 1);
  }
  auto again = join_normal("", *r);
  if (!again || *again != *r) std::abort();
  return 0;
}
