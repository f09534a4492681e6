# The QEMU lab tier (tests/lab/): a real Debian kernel in QEMU (TCG) with SR-IOV devices.
#
# include(${PROJECT_SOURCE_DIR}/tests/lab/lab.cmake) makes sriovd_lab_test() available (tests/
# includes it already, and CMake functions are global, so folders added after tests/ can call it
# without including it again; the include is guarded, so including it twice is harmless).
#
# sriovd_lab_test(NAME COMMAND cmd args...
#                 [TIMEOUT seconds]        guest run limit, default 120 (ctest's TIMEOUT is 60 more)
#                 [STATE dir]              host dir shared writable at /lab/state in the guest and
#                                          kept between boots (default: none, /lab/state is tmpfs)
#                 [ENV VAR=VALUE...]       environment for the command in the guest
#                 [WORKING_DIRECTORY dir]  the command's cwd in the guest (default: this build dir)
#                 [NVME_VFS n]             the NVMe PF's TotalVFs (default 16, max 127)
#                 [REQUIRES igb]           skip (77, without booting) when QEMU lacks the device
#                 [LABELS labels...])      added to the label "lab"
# Runs `tests/lab/run.sh -- cmd args...`: boots the guest, runs the command as root in a chroot of
# the host's root filesystem (the build tree appears at the same path, so $<TARGET_FILE:...> works),
# and passes its exit status on. Exit 77 (qemu or the kernel not installed, or the command's own 77)
# is a skip. Lab tests take the lock "sriovd_lab" and both cores, so they run one at a time.
include_guard(GLOBAL)

set(SRIOVD_LAB_OUTDIR "${CMAKE_BINARY_DIR}/lab" CACHE INTERNAL "Where tests/lab/build.sh caches the guest")

function(sriovd_lab_test name)
  cmake_parse_arguments(L "" "TIMEOUT;STATE;WORKING_DIRECTORY;NVME_VFS" "COMMAND;ENV;LABELS;REQUIRES" ${ARGN})
  if(NOT L_COMMAND)
    message(FATAL_ERROR "sriovd_lab_test(${name}): COMMAND is required")
  endif()
  if(NOT L_TIMEOUT)
    set(L_TIMEOUT 120)
  endif()
  if(NOT L_WORKING_DIRECTORY)
    set(L_WORKING_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}")
  endif()
  set(run bash "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/run.sh" --outdir "${SRIOVD_LAB_OUTDIR}" --name "${name}"
      --timeout "${L_TIMEOUT}")
  if(L_STATE)
    list(APPEND run --state "${L_STATE}")
  endif()
  if(L_NVME_VFS)
    list(APPEND run --nvme-vfs "${L_NVME_VFS}")
  endif()
  foreach(r IN LISTS L_REQUIRES)
    list(APPEND run --require "${r}")
  endforeach()
  foreach(kv IN LISTS L_ENV)
    list(APPEND run -e "${kv}")
  endforeach()
  math(EXPR ctest_timeout "${L_TIMEOUT} + 60")
  add_test(NAME ${name} COMMAND ${run} -- ${L_COMMAND} WORKING_DIRECTORY "${L_WORKING_DIRECTORY}")
  set_tests_properties(${name} PROPERTIES
    LABELS "lab;${L_LABELS}"
    FIXTURES_REQUIRED lab
    SKIP_RETURN_CODE 77
    RESOURCE_LOCK sriovd_lab
    PROCESSORS 2
    TIMEOUT ${ctest_timeout})
endfunction()
