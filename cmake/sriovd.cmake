# Helpers shared by every folder.

# sriovd_test(NAME SOURCES... LIBS libs... [LABELS labels...])
# A doctest executable registered with ctest; tests are hermetic and may run in parallel.
function(sriovd_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} doctest::doctest sriovd_test_main)
  add_test(NAME ${name} COMMAND ${name})
  # Tests write whole fake hosts (tens of thousands of inodes): on tmpfs that takes a tenth of
  # the time it takes on a disk file system, where inode allocation slows with every run.
  if(IS_DIRECTORY /dev/shm)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "TMPDIR=/dev/shm")
  endif()
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()

# sriovd_fuzzer(NAME SOURCE LIBS...) — a libFuzzer target, built only with SRIOVD_FUZZ=ON.
# Without it the same source is built as a replay driver over its seed corpus so the seeds run
# as a test in every build.
function(sriovd_fuzzer name source)
  cmake_parse_arguments(F "" "CORPUS" "LIBS" ${ARGN})
  if(SRIOVD_FUZZ)
    add_executable(${name} ${source})
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(${name}_replay ${source} ${PROJECT_SOURCE_DIR}/tests/fuzz_replay_main.cpp)
    target_link_libraries(${name}_replay PRIVATE ${F_LIBS})
    if(F_CORPUS)
      add_test(NAME ${name}_replay COMMAND ${name}_replay ${F_CORPUS})
    endif()
  endif()
endfunction()
