# CPACK_POST_BUILD_SCRIPTS hook (cmake/ThrumPackaging.cmake): once cpack has written the packages,
# make its -dbgsym .ddeb files lintian-clean (packaging/fix-dbgsym.sh says what it repairs). Runs
# for every cpack, so scripts/package.sh and tests/e2e/package_test get the same packages.
set(_dirs "")
foreach(_f IN LISTS CPACK_PACKAGE_FILES)
  get_filename_component(_d "${_f}" DIRECTORY)
  list(APPEND _dirs "${_d}")
endforeach()
list(REMOVE_DUPLICATES _dirs)
foreach(_d IN LISTS _dirs)
  execute_process(COMMAND "${CMAKE_CURRENT_LIST_DIR}/fix-dbgsym.sh" "${_d}"
                  RESULT_VARIABLE _rc ERROR_VARIABLE _err)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "fix-dbgsym.sh ${_d} failed (${_rc}): ${_err}")
  endif()
endforeach()
