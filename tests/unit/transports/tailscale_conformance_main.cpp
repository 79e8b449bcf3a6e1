// The SDK's transport conformance suite over the built tailscale plugin, loaded through the
// core's PluginLoader: mode embedded against the fake libtailscale, and mode system. The test
// process's main thread runs inside a network namespace whose eth0 has 100.64.0.1 (the fake
// node's address, and "the host's tailscaled address" for mode system). Skipped when not root.
#include <dlfcn.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/netns.hpp"
#include "thrum/core/plugin_loader.hpp"
#include "thrum/sdk/conformance.hpp"

namespace {

namespace fs = std::filesystem;
using thrum::sdk::ITransport;

constexpr const char* kNodeIp = "100.64.0.1";

/// Transports handed to the suite, kept alive by their handles until the suite destroys them.
struct Handles {
  std::mutex mu;
  std::map<ITransport*, thrum::core::ITransportHandle> by_ptr;
};
Handles& handles() {
  static Handles h;
  return h;
}

ITransport* create_through_loader(const std::string& options) {
  thrum::core::PluginLoader::Request req;
  req.options_json = options;
  auto r = thrum::core::PluginLoader().load(THRUM_TAILSCALE_PLUGIN, req);
  if (!r.ok()) {
    ADD_FAILURE() << r.refusal();
    return nullptr;
  }
  std::lock_guard lock(handles().mu);
  ITransport* raw = r.transport.get();
  handles().by_ptr[raw] = r.transport;
  return raw;
}

void release(ITransport* t) {
  std::lock_guard lock(handles().mu);
  handles().by_ptr.erase(t);
}

const ThrumTransportPluginDescriptor* descriptor() {
  void* h = ::dlopen(THRUM_TAILSCALE_PLUGIN, RTLD_NOW | RTLD_LOCAL);
  return h == nullptr ? nullptr
                      : static_cast<const ThrumTransportPluginDescriptor*>(
                            ::dlsym(h, THRUM_SDK_DESCRIPTOR_SYMBOL_NAME));
}

/// One node with the tailnet address; the main thread enters its namespace.
class TailnetEnvironment : public ::testing::Environment {
 public:
  explicit TailnetEnvironment(fs::path state) : state_(std::move(state)) {}
  void SetUp() override {
    std::string why;
    if (!thrum::test::netns_available(&why)) GTEST_SKIP() << why;
    lab_ = std::make_unique<thrum::test::NetLab>(1, "tsconf");
    ASSERT_TRUE(lab_->ok()) << lab_->error();
    ASSERT_TRUE(lab_->add_address(0, std::string(kNodeIp) + "/24"));
    inside_ = std::make_unique<thrum::test::ScopedNetns>(lab_->ns(0));
    ASSERT_TRUE(inside_->ok()) << inside_->error();
  }
  void TearDown() override {
    inside_.reset();
    lab_.reset();
    std::error_code ec;
    fs::remove_all(state_, ec);
  }

 private:
  fs::path state_;
  std::unique_ptr<thrum::test::NetLab> lab_;
  std::unique_ptr<thrum::test::ScopedNetns> inside_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const fs::path state =
      fs::temp_directory_path() / ("thrum-ts-conformance-" + std::to_string(::getpid()) + "-" +
                                   std::to_string(std::random_device{}()));
  nlohmann::json embedded_options = {
      {"mode", "embedded"},
      {"library", THRUM_FAKE_LIBTAILSCALE},
      {"host", {{"state_dir", (state / "tsnet").string()}, {"auth_key", "tskey-conformance"}}}};

  static thrum::sdk::conformance::Target embedded, system;
  for (auto* t : {&embedded, &system}) {
    t->descriptor = descriptor();
    t->file_name = fs::path(THRUM_TAILSCALE_PLUGIN).filename().string();
    t->bind_ip = kNodeIp;
    t->destroy = release;
  }
  embedded.name = "tailscale_embedded_fake";
  embedded.options_json = embedded_options.dump();
  embedded.create = [] { return create_through_loader(embedded.options_json); };
  system.name = "tailscale_system";
  system.options_json = R"({"mode": "system"})";
  system.create = [] { return create_through_loader(system.options_json); };
  thrum::sdk::conformance::register_tests(embedded);
  thrum::sdk::conformance::register_tests(system);

  ::testing::AddGlobalTestEnvironment(new TailnetEnvironment(state));
  return RUN_ALL_TESTS();
}
