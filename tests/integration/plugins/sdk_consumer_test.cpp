// The SDK as a third party sees it: installed into a prefix, the uds example built against it in
// a separate tree (consumer_build.cmake, run by ctest before these tests), then loaded by the
// same loader the daemon uses.
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include "thrum/sdk/version.hpp"

#include "thrum/core/plugin_host.hpp"
#include "thrum/core/plugin_loader.hpp"

namespace thrum::core {
namespace {

namespace fs = std::filesystem;
const fs::path kWork = THRUM_CONSUMER_WORK_DIR;

fs::path find_one(const fs::path& root, const std::string& name) {
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.path().filename() == name) return e.path();
  }
  return {};
}

TEST(SdkConsumer, InstallsHeadersCMakePackageAndPkgConfig) {
  const fs::path prefix = kWork / "prefix";
  for (const char* h :
       {"version.hpp", "types.hpp", "host.hpp", "transport.hpp", "plugin.hpp", "conformance.hpp"}) {
    EXPECT_TRUE(fs::exists(prefix / "include/thrum/sdk" / h)) << h;
  }
  EXPECT_FALSE(find_one(prefix, "ThrumSDKConfig.cmake").empty());
  EXPECT_FALSE(find_one(prefix, "ThrumSDKConfigVersion.cmake").empty());
  EXPECT_FALSE(find_one(prefix, "ThrumPluginHelpers.cmake").empty());
  EXPECT_FALSE(find_one(prefix, "thrum-sdk.pc").empty());
  EXPECT_TRUE(fs::exists(prefix / "bin/thrum-transport-conformance"));
  // Nothing of the daemon leaks into the SDK package.
  EXPECT_FALSE(fs::exists(prefix / "include/thrum/core"));
  EXPECT_FALSE(fs::exists(prefix / "bin/thrum"));
}

TEST(SdkConsumer, LoaderAcceptsUdsPluginBuiltAgainstInstalledSdk) {
  const fs::path so = kWork / "uds" / "libthrum_transport_uds.so";
  ASSERT_TRUE(fs::exists(so)) << so;
  LoadReport r = PluginLoader().load(so);
  ASSERT_TRUE(r.ok()) << r.refusal();
  EXPECT_EQ(r.info.id, "uds");
  EXPECT_EQ(r.info.version, "1.0.0");
  EXPECT_EQ(r.info.abi,
            std::to_string(THRUM_SDK_ABI_MAJOR) + "." + std::to_string(THRUM_SDK_ABI_MINOR));
  ASSERT_TRUE(r.transport);
  EXPECT_TRUE(r.transport->capabilities().loopback_only);
}

TEST(SdkConsumer, InstalledPluginLandsInThePluginDirBesideThrum) {
  // `cmake --install` of the example put it where a thrum in <prefix>/bin looks.
  PluginHost::Options o;
  o.exe_dir = kWork / "prefix" / "bin";
  o.etc_policy = kWork / "no-policy.yaml";
  ::unsetenv("THRUM_POLICY");
  ::unsetenv("THRUM_PLUGIN_PATH");
  auto host = PluginHost::load(o);
  std::string why;
  EXPECT_TRUE(host->find("uds", &why)) << why << "\n" << host->list_json().dump(2);
}

TEST(SdkConsumer, PkgConfigBuildIsAcceptedToo) {
  const fs::path so = kWork / "pkgconfig" / "libthrum_transport_uds.so";
  if (!fs::exists(so)) GTEST_SKIP() << "pkg-config not installed";
  LoadReport r = PluginLoader().load(so);
  EXPECT_TRUE(r.ok()) << r.refusal();
}

TEST(UdsTransport, PolicyOptionsConfigureTheSocketDirAndConnectionsWork) {
  const fs::path dir = kWork / "policy-sockets";
  fs::create_directories(kWork / "plugins");
  const fs::path policy = kWork / "uds-policy.yaml";
  std::ofstream(policy) << "plugin_dirs: [" << (kWork / "uds").string() << "]\n"
                        << "transports:\n  uds: { enabled: true, dir: " << dir.string() << " }\n";
  ::setenv("THRUM_POLICY", policy.c_str(), 1);
  auto host = PluginHost::load(PluginHost::Options{});
  ::unsetenv("THRUM_POLICY");
  std::string why;
  auto t = host->find("uds", &why);
  ASSERT_TRUE(t) << why << "\n" << host->list_json().dump(2);

  auto l = t->listen(sdk::ListenSpec{});
  ASSERT_TRUE(l.ok()) << l.status().message;
  auto listener = std::move(l).value();
  const auto port = listener->local_endpoint().port;
  EXPECT_TRUE(fs::exists(dir / ("thrum-" + std::to_string(port) + ".sock")));
  EXPECT_EQ(
      fs::status(dir / ("thrum-" + std::to_string(port) + ".sock")).permissions() & fs::perms::all,
      fs::perms::owner_read | fs::perms::owner_write);
  auto ep = t->advertise(sdk::AdvertiseSpec{"", port});
  ASSERT_TRUE(ep.ok()) << ep.status().message;
  auto fd = t->dial(ep.value(), std::chrono::seconds(2));
  ASSERT_TRUE(fd.ok()) << fd.status().message;
  ::close(fd.value());
  listener->close();
  EXPECT_FALSE(fs::exists(dir / ("thrum-" + std::to_string(port) + ".sock")))
      << "close() removes the socket";

  EXPECT_EQ(t->validate_address_change({"127.0.0.1", 1}, {"10.0.0.1", 1}).message,
            "uds: IP must stay 127.0.0.1 (only the socket number may change)");
}

TEST(UdsTransport, UnknownPolicyOptionRefusesTheTransportWithTheOptionName) {
  const fs::path policy = kWork / "uds-bad-policy.yaml";
  std::ofstream(policy) << "plugin_dirs: [" << (kWork / "uds").string() << "]\n"
                        << "transports:\n  uds: { enabled: true, directory: /tmp }\n";
  ::setenv("THRUM_POLICY", policy.c_str(), 1);
  auto host = PluginHost::load(PluginHost::Options{});
  ::unsetenv("THRUM_POLICY");
  std::string why;
  EXPECT_FALSE(host->find("uds", &why));
  EXPECT_EQ(why, "refused: configure: unknown option \"directory\" (known: dir, socket_mode)");
}

}  // namespace
}  // namespace thrum::core
