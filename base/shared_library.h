// SharedLibrary: a C library loaded with dlopen when it is first needed rather than by the
// dynamic linker at start. For a dependency most daemons never use (libvirt and what it pulls
// in): it is not mapped, relocated or touched until a feature asks for it, and a host without it
// still runs everything else.
//
// A module lists the functions it calls in an X-macro and resolves them into a table of pointers
// typed from the library's own header (decltype(&::name)), so a changed signature is still a
// compile error:
//
//   #define MY_FUNCTIONS(X) X(virConnectOpen) X(virConnectClose)
//   struct Api {
//     SRIOVD_DECLARE_FUNCTIONS(MY_FUNCTIONS)
//   };
//   auto api = SharedLibrary::load_once<Api>("libvirt.so.0", "libvirt0",
//       [](const SharedLibrary& lib, Api& t) { return SRIOVD_RESOLVE_FUNCTIONS(lib, t, MY_FUNCTIONS); });
//   if (!api) ... (*api)->virConnectOpen(...)
//
// Thread-safety: open and symbol may be called from any thread. A library is never unloaded.
#pragma once

#include <mutex>
#include <string>

#include "base/result.h"

namespace sriovd {

class SharedLibrary {
 public:
  // Loads `soname` (RTLD_NOW | RTLD_LOCAL). On failure the error (unavailable) names the library,
  // the loader's reason, and `package`, the Debian package that provides it.
  static Result<SharedLibrary> open(const std::string& soname, const std::string& package);

  // The address of the exported symbol `name`; an error (unavailable) naming it when absent.
  Result<void*> symbol(const char* name) const;

  const std::string& soname() const { return soname_; }

  // Once per process (per call site): opens `soname` and has `init(lib, table)` fill a static
  // Table (resolve its functions, initialise the library); concurrent first callers wait for it.
  // Every call answers the same: the table, or why it could not be loaded.
  template <class Table, class Init>
  static Result<const Table*> load_once(const std::string& soname, const std::string& package, Init&& init) {
    static std::once_flag once;
    static Table table;
    static const Table* loaded = nullptr;
    static Error failure;
    std::call_once(once, [&] {
      auto lib = open(soname, package);
      if (!lib) {
        failure = std::move(lib).error();
        return;
      }
      if (auto r = init(*lib, table); !r) {
        failure = std::move(r).error();
        return;
      }
      loaded = &table;
    });
    if (!loaded) return failure;
    return loaded;
  }

 private:
  SharedLibrary(void* handle, std::string soname) : handle_(handle), soname_(std::move(soname)) {}
  void* handle_;
  std::string soname_;
};

namespace detail {
template <class F>
Result<void> resolve_into(const SharedLibrary& lib, F& slot, const char* name) {
  auto s = lib.symbol(name);
  if (!s) return std::move(s).error();
  slot = reinterpret_cast<F>(*s);
  return ok();
}
}  // namespace detail

}  // namespace sriovd

// Members `decltype(&::name) name = nullptr;` for each function of the list. `name` is a
// declarator here and cannot be parenthesised.
// NOLINTNEXTLINE(bugprone-macro-parentheses)
#define SRIOVD_DECLARE_FUNCTION_(name) decltype(&::name) name = nullptr;
#define SRIOVD_DECLARE_FUNCTIONS(LIST) LIST(SRIOVD_DECLARE_FUNCTION_)

// Resolves every function of the list into `table`; the first one missing is the error.
#define SRIOVD_RESOLVE_FUNCTION_(name) \
  if (auto r_ = ::sriovd::detail::resolve_into(lib_, table_->name, #name); !r_) return r_;
#define SRIOVD_RESOLVE_FUNCTIONS(lib, table, LIST)                 \
  [&lib_ = (lib), table_ = &(table)]() -> ::sriovd::Result<void> { \
    LIST(SRIOVD_RESOLVE_FUNCTION_)                                 \
    return ::sriovd::ok();                                         \
  }()
