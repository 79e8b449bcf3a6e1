// thrum-transport-conformance <plugin.so> [--options JSON] [--bind IP] [--timeout-ms N]
//                             [--case-timeout-ms N] [gtest flags]
//
// Loads one transport plugin the way the daemon does (after checking its descriptor's ABI and
// toolchain, so that no incompatible code runs) and runs the conformance suite over it.
// Exit status: 0 when every case passed, 1 on failures, 2 on usage errors or an unloadable plugin.

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "thrum/sdk/conformance.hpp"
#include "thrum/sdk/plugin.hpp"

namespace {

class StderrHost final : public thrum::sdk::IHost {
 public:
  void log(thrum::sdk::LogLevel level, std::string_view message) noexcept override {
    static const char* const kNames[] = {"trace", "debug", "info", "warn", "error"};
    const int i = static_cast<int>(level);
    std::fprintf(stderr, "[plugin %s] %.*s\n", (i >= 0 && i <= 4) ? kNames[i] : "?",
                 static_cast<int>(message.size()), message.data());
  }
};

int usage(const char* argv0) {
  std::cerr << "usage: " << argv0
            << " <libthrum_transport_<id>.so> [--options JSON] [--bind IP] [--timeout-ms N] "
               "[--case-timeout-ms N] [gtest flags]\n"
               "  --timeout-ms N       dial timeout the cases use (default 2000)\n"
               "  --case-timeout-ms N  a case that takes longer fails, naming the blocked call "
               "(default 10000)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);  // consumes --gtest_* flags
  std::string plugin, options = "{}", bind = "127.0.0.1";
  long timeout_ms = 2000;
  long case_timeout_ms = 10000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--options" || a == "--bind" || a == "--timeout-ms" || a == "--case-timeout-ms") &&
        i + 1 < argc) {
      const std::string v = argv[++i];
      if (a == "--options")
        options = v;
      else if (a == "--bind")
        bind = v;
      else {
        char* end = nullptr;
        long& out = a == "--timeout-ms" ? timeout_ms : case_timeout_ms;
        out = std::strtol(v.c_str(), &end, 10);
        if (end == v.c_str() || *end != '\0' || out <= 0) return usage(argv[0]);
      }
    } else if (a == "-h" || a == "--help") {
      usage(argv[0]);
      return 0;
    } else if (plugin.empty() && a.rfind("--", 0) != 0) {
      plugin = a;
    } else {
      return usage(argv[0]);
    }
  }
  if (plugin.empty()) return usage(argv[0]);

  const std::string path = std::filesystem::absolute(plugin).string();
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);  // never dlclose'd
  if (handle == nullptr) {
    std::cerr << "cannot load " << path << ": " << ::dlerror() << "\n";
    return 2;
  }
  const auto* d = static_cast<const ThrumTransportPluginDescriptor*>(
      ::dlsym(handle, THRUM_SDK_DESCRIPTOR_SYMBOL_NAME));
  if (d == nullptr) {
    std::cerr << path << ": missing entry symbol " << THRUM_SDK_DESCRIPTOR_SYMBOL_NAME << "\n";
    return 2;
  }
  if (d->struct_size < sizeof(ThrumTransportPluginDescriptor) ||
      d->abi_major != THRUM_SDK_ABI_MAJOR || d->abi_minor > THRUM_SDK_ABI_MINOR ||
      d->toolchain_tag == nullptr || std::strcmp(d->toolchain_tag, THRUM_SDK_TOOLCHAIN_TAG) != 0 ||
      d->create == nullptr || d->destroy == nullptr) {
    std::cerr << path << ": incompatible plugin (ABI " << d->abi_major << "." << d->abi_minor
              << ", toolchain " << (d->toolchain_tag ? d->toolchain_tag : "?")
              << "); this suite is ABI " << THRUM_SDK_ABI_MAJOR << "." << THRUM_SDK_ABI_MINOR
              << ", " << THRUM_SDK_TOOLCHAIN_TAG << ". Run `thrum plugins check` for details.\n";
    return 2;
  }

  static StderrHost host;
  static thrum::sdk::conformance::Target target;
  target.name = d->id != nullptr ? d->id : "plugin";
  target.descriptor = d;
  target.file_name = std::filesystem::path(path).filename().string();
  target.create = [d] { return d->create(&host); };
  target.destroy = [d](thrum::sdk::ITransport* t) { d->destroy(t); };
  target.options_json = options;
  target.bind_ip = bind;
  target.dial_timeout = std::chrono::milliseconds(timeout_ms);
  target.case_timeout = std::chrono::milliseconds(case_timeout_ms);
  thrum::sdk::conformance::register_tests(target);
  return RUN_ALL_TESTS() == 0 ? 0 : 1;
}
