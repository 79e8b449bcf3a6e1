# `thrum plugins list|check` (included from cli/CMakeLists.txt). The loading itself happens in
# `thrum-daemon plugins-list|plugins-check` (daemon/plugins_tool.cpp): the CLI links no loader.
target_sources(thrum PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/plugins_cmd.cpp)
target_compile_definitions(thrum PRIVATE THRUM_HAVE_PLUGINS_CLI=1)
