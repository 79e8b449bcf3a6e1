# Installs the SDK component of the main build into a fresh prefix, then configures and builds
# sdk/examples/uds against it in a separate build tree (as a third party would), and builds a
# second copy with plain g++ and pkg-config.
# Inputs: -DBUILD_DIR=<main build> -DSRC=<sdk/examples/uds> -DWORK=<scratch dir> [-DCXX=<compiler>]
foreach(v BUILD_DIR SRC WORK)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "consumer_build.cmake: -D${v}= is required")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "FAILED (${rc}): ${cmd}\n${out}\n${err}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --component sdk --prefix ${WORK}/prefix)
run(${CMAKE_COMMAND} -S ${SRC} -B ${WORK}/uds -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK}/prefix
    -DCMAKE_CXX_COMPILER=${CXX})
run(${CMAKE_COMMAND} --build ${WORK}/uds)
run(${CMAKE_COMMAND} --install ${WORK}/uds --prefix ${WORK}/prefix)

# pkg-config flavour: no CMake at all on the consumer side.
find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
  set(ENV{PKG_CONFIG_PATH} "")
  file(GLOB_RECURSE pc_files ${WORK}/prefix/*/thrum-sdk.pc)
  list(GET pc_files 0 pc)
  get_filename_component(pc_dir ${pc} DIRECTORY)
  set(ENV{PKG_CONFIG_PATH} ${pc_dir})
  execute_process(COMMAND ${PKG_CONFIG} --cflags thrum-sdk OUTPUT_VARIABLE cflags RESULT_VARIABLE rc
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config --cflags thrum-sdk failed")
  endif()
  separate_arguments(cflags UNIX_COMMAND "${cflags}")
  file(MAKE_DIRECTORY ${WORK}/pkgconfig)
  run(${CXX} -std=c++20 -O2 -fPIC -fvisibility=hidden -shared -Wl,-z,defs ${cflags}
      ${SRC}/uds_transport.cpp ${SRC}/plugin.cpp -o ${WORK}/pkgconfig/libthrum_transport_uds.so)
endif()
message(STATUS "consumer build ok: ${WORK}")
