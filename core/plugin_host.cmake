# thrum::plugin_host — plugin loader, transport registry and operator policy. Included from
# core/CMakeLists.txt; stands alone (no dependency on the rest of thrum_core) so that it builds
# and tests while the daemon is being written.
set(_thrum_ph_dir ${CMAKE_CURRENT_LIST_DIR})

add_library(thrum_plugin_host STATIC
  ${_thrum_ph_dir}/src/plugin_loader.cpp
  ${_thrum_ph_dir}/src/plugin_host.cpp
  ${_thrum_ph_dir}/src/transport_registry.cpp
  ${_thrum_ph_dir}/src/policy.cpp
)
add_library(thrum::plugin_host ALIAS thrum_plugin_host)
target_include_directories(thrum_plugin_host PUBLIC ${_thrum_ph_dir}/include
                           PRIVATE ${PROJECT_SOURCE_DIR}/common/include)  # policy_lookup.hpp
target_link_libraries(thrum_plugin_host
  PUBLIC thrum::sdk nlohmann_json::nlohmann_json
  PRIVATE spdlog::spdlog yaml-cpp Boost::headers ${CMAKE_DL_LIBS})
# Plugins of an installed thrum live in <prefix>/<libdir>/thrum/plugins.
if(DEFINED THRUM_PLUGIN_SUBDIR)
  target_compile_definitions(thrum_plugin_host PRIVATE THRUM_PLUGIN_SUBDIR="${THRUM_PLUGIN_SUBDIR}")
endif()
# Boost.DLL on std::filesystem: no Boost.Filesystem library needed.
target_compile_definitions(thrum_plugin_host PRIVATE BOOST_DLL_USE_STD_FS)
set_target_properties(thrum_plugin_host PROPERTIES POSITION_INDEPENDENT_CODE ON)
thrum_target_defaults(thrum_plugin_host)

# `plugins.list` needs the JSON-RPC dispatcher, which lives in thrum_core.
if(TARGET thrum_core)
  target_sources(thrum_core PRIVATE ${_thrum_ph_dir}/src/plugin_rpc.cpp)
endif()
