#pragma once
/// @file
/// Versions of the Thrum transport plugin SDK and the toolchain tag a plugin is built with.
///
/// The host compares these, as recorded in a plugin's descriptor (see plugin.hpp), against its
/// own before it runs any plugin code:
///  - ABI major must be equal: a major bump means an incompatible change of a type or interface.
///  - ABI minor of the plugin must not be newer than the host's: minors only append (new
///    descriptor fields at the end, new virtual methods at the end of IHost), so an older plugin
///    works with a newer host, but a newer plugin could call into host code that does not exist.
///  - The toolchain tag must be equal: std::string, std::unique_ptr and friends cross the
///    boundary, so both sides must agree on the C++ standard library ABI.

/// Incompatible changes bump this; the host refuses plugins with a different major.
#define THRUM_SDK_ABI_MAJOR 1
/// Append-only additions bump this; the host refuses plugins with a newer minor.
#define THRUM_SDK_ABI_MINOR 1
/// Version of the SDK package (headers, CMake helpers, conformance suite). Its major is the ABI
/// major.
#define THRUM_SDK_VERSION_STRING "1.1.0"

#define THRUM_SDK_STRINGIFY_IMPL_(x) #x
#define THRUM_SDK_STRINGIFY_(x) THRUM_SDK_STRINGIFY_IMPL_(x)

#if defined(__clang__)
#define THRUM_SDK_COMPILER_FAMILY_ "clang"
#elif defined(__GNUC__)
#define THRUM_SDK_COMPILER_FAMILY_ "gcc"
#else
#define THRUM_SDK_COMPILER_FAMILY_ "unknown"
#endif

// _GLIBCXX_USE_CXX11_ABI is defined by libstdc++'s <bits/c++config.h>; pull in the smallest
// header that includes it so the tag reflects the library actually used.
#include <cstddef>
#if defined(_GLIBCXX_USE_CXX11_ABI)
#define THRUM_SDK_CXX11_ABI_ THRUM_SDK_STRINGIFY_(_GLIBCXX_USE_CXX11_ABI)
#else
#define THRUM_SDK_CXX11_ABI_ "none"
#endif

#if defined(__GXX_ABI_VERSION)
#define THRUM_SDK_GXX_ABI_ THRUM_SDK_STRINGIFY_(__GXX_ABI_VERSION)
#else
#define THRUM_SDK_GXX_ABI_ "none"
#endif

/// The toolchain tag, e.g. `gcc/cxx11abi=1/gxxabi=1017`: compiler family, libstdc++'s
/// `_GLIBCXX_USE_CXX11_ABI` and `__GXX_ABI_VERSION`. Compared as an exact string.
/// `THRUM_SDK_TOOLCHAIN_TAG_OVERRIDE` (a string literal) replaces it; it exists so that tests
/// can fake a plugin built by another toolchain. Do not set it in real plugins.
#if defined(THRUM_SDK_TOOLCHAIN_TAG_OVERRIDE)
#define THRUM_SDK_TOOLCHAIN_TAG THRUM_SDK_TOOLCHAIN_TAG_OVERRIDE
#else
#define THRUM_SDK_TOOLCHAIN_TAG \
  THRUM_SDK_COMPILER_FAMILY_ "/cxx11abi=" THRUM_SDK_CXX11_ABI_ "/gxxabi=" THRUM_SDK_GXX_ABI_
#endif

namespace thrum::sdk {

inline constexpr int kAbiMajor = THRUM_SDK_ABI_MAJOR;
inline constexpr int kAbiMinor = THRUM_SDK_ABI_MINOR;
inline constexpr const char* kSdkVersion = THRUM_SDK_VERSION_STRING;
inline constexpr const char* kToolchainTag = THRUM_SDK_TOOLCHAIN_TAG;

}  // namespace thrum::sdk
