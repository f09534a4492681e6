#include "kernel/open_files.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using sriovd::kernel::describe;
using sriovd::kernel::find_holders;

namespace {

// A fake /proc: <pid>/comm and <pid>/fd/<n> links to whatever the test names.
void fake_process(const fs::path& proc, int pid, const std::string& comm, const std::vector<std::string>& files) {
  fs::create_directories(proc / std::to_string(pid) / "fd");
  std::ofstream(proc / std::to_string(pid) / "comm") << comm << "\n";
  int n = 3;
  for (const auto& f : files) fs::create_symlink(f, proc / std::to_string(pid) / "fd" / std::to_string(n++));
}

}  // namespace

TEST_CASE("the processes holding a VFIO group are found by their fd links, in pid order") {
  sriovd::test::TempDir tmp;
  fs::path proc = tmp.path() / "proc";
  fake_process(proc, 4242, "qemu-system-x86",
               {"/dev/null", "/dev/vfio/8", "/dev/vfio/vfio", "anon_inode:[vfio-device]"});
  fake_process(proc, 17, "libvirtd", {"/dev/vfio/8"});
  fake_process(proc, 99, "bash", {"/dev/vfio/9", "/dev/vfio/80"});
  fs::create_directories(proc / "self");  // not a pid: ignored
  std::ofstream(proc / "uptime") << "1.0 1.0\n";

  auto h = find_holders(proc, {"/dev/vfio/8"});
  REQUIRE(h);
  REQUIRE(h->size() == 2);
  CHECK((*h)[0].pid == 17);
  CHECK((*h)[1].pid == 4242);
  CHECK((*h)[1].comm == "qemu-system-x86");
  CHECK(describe(*h) == "libvirtd (pid 17), qemu-system-x86 (pid 4242)");

  CHECK(find_holders(proc, {"/dev/vfio/7"})->empty());
  CHECK(find_holders(proc, {"/dev/vfio/7", "/dev/vfio/9"})->size() == 1);
}

TEST_CASE("a process whose fds cannot be read is skipped; a /proc that cannot be listed is an error") {
  sriovd::test::TempDir tmp;
  fs::path proc = tmp.path() / "proc";
  fs::create_directories(proc / "55");  // no fd directory: exited or not ours
  CHECK(find_holders(proc, {"/dev/vfio/8"})->empty());
  auto r = find_holders(tmp.path() / "absent", {"/dev/vfio/8"});
  REQUIRE_FALSE(r);
  CHECK(r.error().errnum == ENOENT);
}

TEST_CASE("this process is found holding a file it opened (the real /proc)") {
  sriovd::test::TempDir tmp;
  fs::path f = tmp.path() / "held";
  std::ofstream(f) << "x";
  std::ifstream keep(f);
  auto h = find_holders("/proc", {f.string()});
  REQUIRE(h);
  bool found = false;
  for (const auto& x : *h) found = found || x.pid == ::getpid();
  CHECK(found);
}
