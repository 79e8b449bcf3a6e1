#include "thrum/core/plugin_host.hpp"

#include <gtest/gtest.h>

#include "thrum/sdk/version.hpp"

#include "plugin_test_util.hpp"

namespace thrum::core {
namespace {

using nlohmann::json;
using test::install_fixture;
using test::ScopedEnv;
using test::TempDir;

// A PluginHost over `plugin_dir` (as $THRUM_PLUGIN_PATH), with `policy_text` as $THRUM_POLICY
// when given, and no /etc policy.
struct HostFixture {
  TempDir tmp;
  std::filesystem::path plugins = tmp / "plugins";
  std::filesystem::path policy = tmp / "transports.yaml";
  std::unique_ptr<ScopedEnv> env_path, env_policy;

  std::unique_ptr<PluginHost> load(const std::string* policy_text = nullptr) {
    std::filesystem::create_directories(plugins);
    env_path = std::make_unique<ScopedEnv>("THRUM_PLUGIN_PATH", plugins.c_str());
    if (policy_text != nullptr) {
      test::write_file(policy, *policy_text);
      env_policy = std::make_unique<ScopedEnv>("THRUM_POLICY", policy.c_str());
    } else {
      env_policy = std::make_unique<ScopedEnv>("THRUM_POLICY", nullptr);
    }
    PluginHost::Options o;
    // No exe_dir: only $THRUM_PLUGIN_PATH is scanned (default_plugin_dirs has its own test).
    o.etc_policy = tmp / "no-etc-policy.yaml";
    return PluginHost::load(o);
  }
};

const json* entry(const json& list, const std::string& id, const std::string& path = {}) {
  for (const auto& e : list) {
    if (e.at("id") == id && (path.empty() || e.at("path") == path)) return &e;
  }
  return nullptr;
}

TEST(PluginHost, WithoutPolicyEnablesHealthyPluginsAndRefusesBrokenOnes) {
  HostFixture f;
  const auto good = install_fixture("good", f.plugins);
  const auto bad = install_fixture("abi_major", f.plugins);
  auto host = f.load();
  EXPECT_EQ(host->policy_source(), "");
  const json list = host->list_json();
  ASSERT_EQ(list.size(), 2u) << list.dump();
  const json* g = entry(list, "good");
  ASSERT_NE(g, nullptr) << list.dump();
  EXPECT_EQ(*g, json({{"id", "good"},
                      {"version", "0.0.1"},
                      {"abi", std::to_string(THRUM_SDK_ABI_MAJOR) + "." +
                                  std::to_string(THRUM_SDK_ABI_MINOR)},
                      {"path", good.string()},
                      {"status", "enabled"}}));
  const json* b = entry(list, "abi_major");
  ASSERT_NE(b, nullptr) << list.dump();
  EXPECT_EQ(b->at("status"), "refused: abi: plugin ABI 2.0, host supports 1.x");
  EXPECT_EQ(b->at("path"), bad.string());

  std::string why;
  EXPECT_TRUE(host->find("good", &why));
  EXPECT_EQ(host->registry().ids(), std::vector<std::string>{"good"});
  EXPECT_FALSE(host->find("abi_major", &why));
  EXPECT_EQ(why, "refused: abi: plugin ABI 2.0, host supports 1.x");
}

TEST(PluginHost, DisabledTransportIsNotLoadedAndListedWithPolicyFile) {
  HostFixture f;
  install_fixture("good", f.plugins);
  // If it were loaded, its factory would run and refuse it; "disabled" proves it never ran.
  install_fixture("throwing_factory", f.plugins);
  const std::string policy =
      "transports:\n  good: { enabled: true }\n  throwing_factory: { enabled: false }\n";
  auto host = f.load(&policy);
  EXPECT_EQ(host->policy_source(), f.policy.string());
  const json list = host->list_json();
  const json* t = entry(list, "throwing_factory");
  ASSERT_NE(t, nullptr) << list.dump();
  EXPECT_EQ(t->at("status"), "disabled by policy (" + f.policy.string() + ")");
  EXPECT_EQ(entry(list, "good")->at("status"), "enabled");
  std::string why;
  EXPECT_FALSE(host->find("throwing_factory", &why));
  EXPECT_EQ(why, "disabled by policy (" + f.policy.string() + ")");
  EXPECT_FALSE(host->registry().contains("throwing_factory"));
}

TEST(PluginHost, TransportMissingFromPolicyAllowListIsDisabled) {
  HostFixture f;
  install_fixture("good", f.plugins);
  const std::string policy = "transports:\n  local: { enabled: true }\n";
  auto host = f.load(&policy);
  const json list = host->list_json();
  ASSERT_NE(entry(list, "good"), nullptr);
  EXPECT_EQ(entry(list, "good")->at("status"), "disabled by policy (" + f.policy.string() + ")");
  // and the policy's transport that has no plugin file is listed too
  const json* local = entry(list, "local");
  ASSERT_NE(local, nullptr);
  EXPECT_EQ(local->at("status"), "not found in " + f.plugins.string());
  std::string why;
  EXPECT_FALSE(host->find("local", &why));
  EXPECT_EQ(why, "no plugin found in " + f.plugins.string());
}

TEST(PluginHost, PolicyOptionsReachConfigure) {
  HostFixture f;
  install_fixture("good", f.plugins);
  const std::string policy = "transports:\n  good: { enabled: true, fail: bad-subnet }\n";
  auto host = f.load(&policy);
  const json list = host->list_json();
  ASSERT_NE(entry(list, "good"), nullptr);
  EXPECT_EQ(entry(list, "good")->at("status"), "refused: configure: bad-subnet");
  EXPECT_EQ(host->transport_options("good"), json({{"fail", "bad-subnet"}}));
}

TEST(PluginHost, PolicyPluginDirsReplaceDefaults) {
  HostFixture f;
  install_fixture("good", f.plugins);  // in $THRUM_PLUGIN_PATH: ignored under a policy with dirs
  const auto other = f.tmp / "operator-dir";
  const auto op = install_fixture("good", other);
  const std::string policy = "plugin_dirs: [" + other.string() + "]\n";
  auto host = f.load(&policy);
  EXPECT_EQ(host->plugin_dirs(), std::vector<std::filesystem::path>{other});
  ASSERT_EQ(host->list_json().size(), 1u);
  EXPECT_EQ(host->registry().info("good")->path, op);
}

TEST(PluginHost, DuplicateIdKeepsTheFirstAndRefusesTheSecond) {
  HostFixture f;
  const auto a = f.tmp / "a";
  const auto b = f.tmp / "b";
  const auto first = install_fixture("good", a);
  const auto second = install_fixture("good", b);
  test::ScopedEnv path("THRUM_PLUGIN_PATH", (a.string() + ":" + b.string()).c_str());
  PluginHost::Options o;
  o.etc_policy = f.tmp / "none.yaml";
  test::ScopedEnv nopolicy("THRUM_POLICY", nullptr);
  auto host = PluginHost::load(o);
  const json list = host->list_json();
  EXPECT_EQ(entry(list, "good", first.string())->at("status"), "enabled");
  EXPECT_EQ(entry(list, "good", second.string())->at("status"),
            "refused: id: duplicate id \"good\" (already loaded from " + first.string() + ")");
  EXPECT_EQ(host->registry().info("good")->path, first);
  std::string why;
  EXPECT_TRUE(host->find("good", &why));
}

TEST(PluginHost, MalformedPolicyThrowsWithFileAndLine) {
  HostFixture f;
  const std::string policy = "transports:\n  good: { enabled: maybe }\n";
  try {
    f.load(&policy);
    FAIL() << "expected PolicyError";
  } catch (const PolicyError& e) {
    EXPECT_EQ(
        std::string(e.what()),
        f.policy.string() + ":2: transports.good.enabled: expected true or false, got \"maybe\"");
  }
}

TEST(PluginHost, UnknownTransportSaysWhereItLooked) {
  HostFixture f;
  auto host = f.load();
  std::string why;
  EXPECT_FALSE(host->find("tailscale", &why));
  EXPECT_EQ(why, "no plugin found in " + f.plugins.string());
}

TEST(PluginHost, EveryBrokenFixtureIsRefusedAndTheHealthyOneStillServes) {
  HostFixture f;
  for (const char* id :
       {"abi_major", "abi_minor", "struct_size", "missing_entry", "null_factory", "null_return",
        "throwing_factory", "unresolved", "id_mismatch", "toolchain", "good"}) {
    install_fixture(id, f.plugins);
  }
  test::write_file(f.plugins / "libthrum_transport_text.so", "not a library");
  install_fixture("good", f.plugins, "thrum_transport_misnamed.so");
  auto host = f.load();
  const json list = host->list_json();
  EXPECT_EQ(list.size(), 13u) << list.dump(2);
  int enabled = 0;
  for (const auto& e : list) {
    if (e.at("status") == "enabled") {
      ++enabled;
      EXPECT_EQ(e.at("id"), "good");
    } else {
      EXPECT_EQ(e.at("status").get<std::string>().rfind("refused: ", 0), 0u) << e.dump();
    }
  }
  EXPECT_EQ(enabled, 1);
  EXPECT_EQ(host->registry().ids(), std::vector<std::string>{"good"});
}

TEST(PluginHost, DefaultDirsAreBesideTheBinaryThenPluginPath) {
  test::ScopedEnv env("THRUM_PLUGIN_PATH", "/opt/a::/opt/b");
  EXPECT_EQ(
      PluginHost::default_plugin_dirs("/usr/local/bin"),
      (std::vector<std::filesystem::path>{"/usr/local/lib/thrum/plugins", "/opt/a", "/opt/b"}));
}

}  // namespace
}  // namespace thrum::core
