# Debian packages from the CMake install (scripts/package.sh; docs/design-decisions.md
# "Packages"). Three components, three packages, each with a -dbgsym package:
#   runtime   -> thrum                       CLI, daemon, local and network plugins, man pages,
#                                            completions, docs, the systemd user unit
#   tailscale -> thrum-transport-tailscale   the tailscale plugin (libtailscale comes from elsewhere)
#   sdk       -> thrum-sdk-dev               headers, CMake package, .pc, conformance runner
# Installed under /usr whatever CMAKE_INSTALL_PREFIX the build tree has: the binaries find
# plugins relative to themselves (<bin>/../lib/thrum/plugins), so the tree needs no reconfigure.

set(_thrum_pkg ${CMAKE_SOURCE_DIR}/packaging)
set(_thrum_gen ${CMAKE_BINARY_DIR}/packaging)
file(MAKE_DIRECTORY ${_thrum_gen})

# Per-package /usr/share/doc/<pkg>: copyright (from LICENSE) and changelog.gz (Debian policy).
execute_process(COMMAND gzip -9nc ${_thrum_pkg}/changelog
                OUTPUT_FILE ${_thrum_gen}/changelog.gz)
foreach(_c runtime tailscale sdk)
  if(_c STREQUAL "runtime")
    set(_p thrum)
  elseif(_c STREQUAL "tailscale")
    set(_p thrum-transport-tailscale)
  else()
    set(_p thrum-sdk-dev)
  endif()
  install(FILES ${_thrum_pkg}/copyright ${_thrum_gen}/changelog.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${_p} COMPONENT ${_c})
endforeach()

# thrum: docs, the unit, the lintian override.
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/design-decisions.md
              ${CMAKE_SOURCE_DIR}/docs/plugin-sdk.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/thrum COMPONENT runtime)
install(FILES ${_thrum_pkg}/thrum@.service DESTINATION lib/systemd/user COMPONENT runtime)
install(FILES ${_thrum_pkg}/lintian/thrum
        DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides COMPONENT runtime)
# thrum-daemon(1) is the generated page of `thrum daemon`, which also describes the executable.
# thrum-transport-tailscale
install(FILES ${CMAKE_SOURCE_DIR}/docs/tailscale.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/thrum-transport-tailscale COMPONENT tailscale)
# thrum-sdk-dev
install(FILES ${CMAKE_SOURCE_DIR}/docs/plugin-sdk.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/thrum-sdk-dev COMPONENT sdk)
if(TARGET thrum-transport-conformance)
  execute_process(COMMAND gzip -9nc ${_thrum_pkg}/thrum-transport-conformance.1
                  OUTPUT_FILE ${_thrum_gen}/thrum-transport-conformance.1.gz)
  install(FILES ${_thrum_gen}/thrum-transport-conformance.1.gz
          DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT sdk)
endif()

# ---- CPack ------------------------------------------------------------------------------------
# cpack and `make install` package what is built (scripts/package.sh builds first); without this,
# cpack from the ci tree would first build every test.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME thrum)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "The Thrum developers")
set(CPACK_PACKAGE_CONTACT "Thrum developers <dev@thrum.invalid>")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://github.com/thrum-dev/thrum")
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# -dbgsym packages only from a tree built for them: Release with -g (the `package` preset). There
# CPackDeb itself splits the debug info out (objcopy --only-keep-debug into
# /usr/lib/debug/.build-id/xx/yyyy.debug, then --strip-unneeded and a debuglink), and it only does
# so for files `file` still calls "not stripped": CPACK_STRIP_FILES must then stay OFF, or the
# install step strips first and no -dbgsym package comes out. Any other tree (ci: no debug info;
# asan/dev: not a release) packages stripped binaries and no -dbgsym. tests/e2e/package_test reads
# this decision back from CPackConfig.cmake, so test and packaging cannot disagree.
if(CMAKE_BUILD_TYPE STREQUAL "Release" AND CMAKE_CXX_FLAGS_RELEASE MATCHES "(^| )-g( |$)")
  set(THRUM_PACKAGE_DBGSYM ON)
  set(CPACK_STRIP_FILES OFF)
else()
  set(THRUM_PACKAGE_DBGSYM OFF)
  set(CPACK_STRIP_FILES ON)
endif()
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/packages)
set(CPACK_COMPONENTS_ALL runtime tailscale sdk)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "Thrum developers <dev@thrum.invalid>")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
set(CPACK_DEBIAN_DEBUGINFO_PACKAGE ${THRUM_PACKAGE_DBGSYM})
# The .ddeb files as CMake 3.25 writes them fail lintian; this repairs them after every cpack.
set(CPACK_POST_BUILD_SCRIPTS ${_thrum_pkg}/dbgsym-post-build.cmake)

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME thrum)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
string(CONCAT CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "messaging between AI agents, across repos and machines\n"
    "Thrum runs one daemon per repository; agents send each other messages\n"
    "through it, and paired daemons carry them across repositories (local\n"
    "transport) and machines (network transport). Includes the thrum CLI, the\n"
    "daemon, man pages, bash and zsh completions and a systemd user unit\n"
    "(thrum@.service).")

set(CPACK_DEBIAN_TAILSCALE_PACKAGE_NAME thrum-transport-tailscale)
set(CPACK_DEBIAN_TAILSCALE_PACKAGE_SECTION net)
set(CPACK_DEBIAN_TAILSCALE_PACKAGE_DEPENDS "thrum (= ${PROJECT_VERSION})")
string(CONCAT CPACK_COMPONENT_TAILSCALE_DESCRIPTION
    "Thrum transport plugin: peers over a tailnet\n"
    "Lets Thrum daemons pair over Tailscale, through the host's tailscaled or\n"
    "an embedded node. The embedded node needs libtailscale, which is not\n"
    "packaged here: install it from Tailscale's sources (see\n"
    "/usr/share/doc/thrum-transport-tailscale/tailscale.md).")

set(CPACK_DEBIAN_SDK_PACKAGE_NAME thrum-sdk-dev)
set(CPACK_DEBIAN_SDK_PACKAGE_SECTION libdevel)
string(CONCAT CPACK_COMPONENT_SDK_DESCRIPTION
    "Thrum transport plugin SDK\n"
    "Headers, the CMake package (find_package(ThrumSDK)), a pkg-config file\n"
    "and the transport conformance runner, for building Thrum transport\n"
    "plugins.")

include(CPack)
