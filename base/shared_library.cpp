#include "base/shared_library.h"

#include <dlfcn.h>

#include <mutex>

namespace sriovd {

namespace {
// dlerror's message is per thread but its buffer is shared with other dl* callers of the thread;
// read it at once.
std::string last_dl_error(const char* fallback) {
  const char* e = ::dlerror();
  return e ? e : fallback;
}
}  // namespace

Result<SharedLibrary> SharedLibrary::open(const std::string& soname, const std::string& package) {
  void* h = ::dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    return Error::make(ErrorCode::unavailable, "cannot load " + soname + " (" + last_dl_error("not found") +
                                                   "): install the " + package + " package");
  }
  return SharedLibrary(h, soname);
}

Result<void*> SharedLibrary::symbol(const char* name) const {
  ::dlerror();
  void* p = ::dlsym(handle_, name);
  if (!p) {
    return Error::make(ErrorCode::unavailable,
                       soname_ + " has no " + name + " (" + last_dl_error("null symbol") + "): the library is too old");
  }
  return p;
}

}  // namespace sriovd
