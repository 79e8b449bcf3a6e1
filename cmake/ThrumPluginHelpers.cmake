# thrum_add_transport_plugin(<id> SOURCES <src>... [LINK_LIBRARIES <lib>...]
#                            [OUTPUT_DIRECTORY <dir>] [ALLOW_UNDEFINED])
#
# Builds the transport plugin `libthrum_transport_<id>.so` (CMake target
# `thrum_transport_<id>`): a MODULE library (no SONAME, not linkable), C++20, hidden visibility
# so that only the THRUM_TRANSPORT_PLUGIN descriptor is exported, linked with `-z defs` so that a
# missing symbol fails the build instead of the load. Works in the Thrum tree (thrum::sdk) and
# against an installed SDK (find_package(ThrumSDK) provides Thrum::sdk).
function(thrum_add_transport_plugin id)
  cmake_parse_arguments(ARG "ALLOW_UNDEFINED" "OUTPUT_DIRECTORY" "SOURCES;LINK_LIBRARIES" ${ARGN})
  if(NOT id MATCHES "^[a-z0-9_]+$")
    message(FATAL_ERROR "thrum_add_transport_plugin: id \"${id}\" must match [a-z0-9_]+")
  endif()
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "thrum_add_transport_plugin(${id}): SOURCES is required")
  endif()
  set(target thrum_transport_${id})
  add_library(${target} MODULE ${ARG_SOURCES})
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME "thrum_transport_${id}"
    SUFFIX ".so"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    CXX_EXTENSIONS OFF
    POSITION_INDEPENDENT_CODE ON)
  target_compile_features(${target} PRIVATE cxx_std_20)
  if(TARGET Thrum::sdk)
    target_link_libraries(${target} PRIVATE Thrum::sdk)
  elseif(TARGET thrum::sdk)
    target_link_libraries(${target} PRIVATE thrum::sdk)
  else()
    message(FATAL_ERROR "thrum_add_transport_plugin: no Thrum SDK target; call find_package(ThrumSDK) first")
  endif()
  if(ARG_LINK_LIBRARIES)
    target_link_libraries(${target} PRIVATE ${ARG_LINK_LIBRARIES})
  endif()
  if(NOT ARG_ALLOW_UNDEFINED AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
    target_link_options(${target} PRIVATE "LINKER:-z,defs")
  endif()
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${ARG_OUTPUT_DIRECTORY}")
  endif()
endfunction()

# thrum_add_transport_conformance_test(<name> PLUGIN <target-or-path> [OPTIONS <json>] [BIND <ip>])
#
# Adds the ctest `transport_conformance_<name>`: the SDK's conformance suite
# (thrum-transport-conformance) over one plugin. OPTIONS is what the operator policy would pass to
# configure() (JSON object text); BIND the address to listen on and advertise (default 127.0.0.1).
function(thrum_add_transport_conformance_test name)
  cmake_parse_arguments(ARG "" "PLUGIN;OPTIONS;BIND" "" ${ARGN})
  if(TARGET thrum-transport-conformance)
    set(runner $<TARGET_FILE:thrum-transport-conformance>)
  elseif(TARGET Thrum::transport-conformance)
    set(runner $<TARGET_FILE:Thrum::transport-conformance>)
  else()
    message(WARNING "thrum_add_transport_conformance_test(${name}): the conformance runner is not available "
                    "(SDK built without GoogleTest); test not added")
    return()
  endif()
  if(TARGET ${ARG_PLUGIN})
    set(plugin $<TARGET_FILE:${ARG_PLUGIN}>)
  else()
    set(plugin ${ARG_PLUGIN})
  endif()
  if(NOT ARG_OPTIONS)
    set(ARG_OPTIONS "{}")
  endif()
  if(NOT ARG_BIND)
    set(ARG_BIND 127.0.0.1)
  endif()
  add_test(NAME transport_conformance_${name}
           COMMAND ${runner} ${plugin} --options ${ARG_OPTIONS} --bind ${ARG_BIND})
  set_tests_properties(transport_conformance_${name} PROPERTIES LABELS conformance TIMEOUT 120)
endfunction()
