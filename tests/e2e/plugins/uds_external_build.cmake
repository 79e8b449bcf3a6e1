# The uds example built as a third party builds it (issue 12): the SDK component of the main
# build installed into a prefix, sdk/examples/uds configured as a separate CMake project against
# that prefix, built, and its plugin installed into a plugin directory the e2e daemons use.
#
# Unlike tests/integration/plugins/consumer_build.cmake this keeps its build tree between runs:
# configured once, then only rebuilt (a no-op when nothing changed), so the suite stays fast.
# Inputs: -DBUILD_DIR=<main build> -DSRC=<sdk/examples/uds> -DWORK=<scratch dir> [-DCXX=<compiler>]
# Output: ${WORK}/thrum-prefix/<plugin dir>/libthrum_transport_uds.so, and that directory's path
# in ${WORK}/plugin_dir.txt for the tests.
foreach(v BUILD_DIR SRC WORK)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "uds_external_build.cmake: -D${v}= is required")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "FAILED (${rc}): ${cmd}\n${out}\n${err}")
  endif()
endfunction()

file(MAKE_DIRECTORY ${WORK})
# Installing again is cheap (unchanged files are skipped) and picks up SDK header changes.
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --component sdk --prefix ${WORK}/sdk-prefix)
if(NOT EXISTS ${WORK}/uds-build/CMakeCache.txt)
  set(cxx)
  if(CXX)
    set(cxx -DCMAKE_CXX_COMPILER=${CXX})
  endif()
  run(${CMAKE_COMMAND} -S ${SRC} -B ${WORK}/uds-build -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_PREFIX_PATH=${WORK}/sdk-prefix ${cxx})
endif()
run(${CMAKE_COMMAND} --build ${WORK}/uds-build)
run(${CMAKE_COMMAND} --install ${WORK}/uds-build --prefix ${WORK}/thrum-prefix)
file(GLOB_RECURSE so ${WORK}/thrum-prefix/*/libthrum_transport_uds.so)
list(LENGTH so n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "expected one installed libthrum_transport_uds.so under ${WORK}/thrum-prefix, found: ${so}")
endif()
get_filename_component(dir ${so} DIRECTORY)
file(WRITE ${WORK}/plugin_dir.txt "${dir}")
message(STATUS "uds built against the installed SDK: ${so}")
