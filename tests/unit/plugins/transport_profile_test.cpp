// ABI 1.1 TransportProfile through the real loader: a plugin declaring minor 1 is described by
// its profile(); the same code declaring minor 0 (a plugin built for ABI 1.0, whose vtable has
// no profile()) still loads and gets the documented defaults, and profile() is never called.
#include <gtest/gtest.h>

#include "thrum/core/plugin_host.hpp"

#include "plugin_test_util.hpp"

namespace thrum::core {
namespace {

using nlohmann::json;
using test::install_fixture;
using test::ScopedEnv;
using test::TempDir;

struct Loaded {
  TempDir tmp;
  std::unique_ptr<ScopedEnv> path, policy;
  std::unique_ptr<PluginHost> host;
  explicit Loaded(const std::string& fixture) {
    install_fixture(fixture, tmp / "plugins");
    path = std::make_unique<ScopedEnv>("THRUM_PLUGIN_PATH", (tmp / "plugins").c_str());
    policy = std::make_unique<ScopedEnv>("THRUM_POLICY", nullptr);
    PluginHost::Options o;
    o.etc_policy = tmp / "no-etc-policy.yaml";
    host = PluginHost::load(o);
  }
  json entry(const std::string& id) const {
    for (const auto& e : host->transports_json())
      if (e.at("id") == id) return e;
    return nullptr;
  }
};

TEST(TransportProfile, AnAbi11PluginIsDescribedByItsProfile) {
  Loaded l("profile_v11");
  std::string why;
  Transport t = l.host->transport("profile_v11", &why);
  ASSERT_TRUE(t) << why;
  EXPECT_EQ(t.profile.help, "Fixture with a profile.\nSecond line.");
  EXPECT_TRUE(t.profile.follows_host_addresses);
  EXPECT_TRUE(t.profile.poll_resolve);
  EXPECT_EQ(t.profile.credential.name, "fixture key");
  EXPECT_EQ(t.profile.credential.env, "THRUM_FIXTURE_KEY");
  EXPECT_EQ(t.profile.state_dir, "fixture-state");
  // What `peer add|join` builds their help and credential handling from.
  const json e = l.entry("profile_v11");
  EXPECT_EQ(e.value("available", false), true) << e.dump();
  EXPECT_EQ(e.value("help", ""), "Fixture with a profile.\nSecond line.");
  EXPECT_EQ(
      e["credential"],
      json({{"name", "fixture key"}, {"env", "THRUM_FIXTURE_KEY"}, {"prompt", "Fixture key: "}}));
}

TEST(TransportProfile, AnAbi10PluginLoadsAndGetsTheDocumentedDefaults) {
  Loaded l("profile_v10");
  const json list = l.host->list_json();
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0].at("status"), "enabled") << list.dump();
  EXPECT_EQ(list[0].at("abi"), "1.0") << list.dump();
  std::string why;
  Transport t = l.host->transport("profile_v10", &why);
  ASSERT_TRUE(t) << why;
  // The plugin's profile() would say otherwise: the host did not call it.
  EXPECT_EQ(t.profile.help, "Transport from a plugin (no description).");
  EXPECT_FALSE(t.profile.follows_host_addresses);
  EXPECT_FALSE(t.profile.poll_resolve);
  EXPECT_TRUE(t.profile.credential.name.empty());
  EXPECT_EQ(t.profile.state_dir, "profile_v10") << "default state_dir is the transport id";
  const json e = l.entry("profile_v10");
  EXPECT_EQ(e.value("help", ""), "Transport from a plugin (no description).") << e.dump();
  EXPECT_FALSE(e.contains("credential")) << e.dump();
}

}  // namespace
}  // namespace thrum::core
