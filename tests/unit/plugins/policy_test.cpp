#include "thrum/core/policy.hpp"

#include <gtest/gtest.h>

#include "plugin_test_util.hpp"

namespace thrum::core {
namespace {

std::string error_of(const std::string& yaml,
                     const std::string& file = "/etc/thrum/transports.yaml") {
  try {
    Policy::parse(yaml, file);
  } catch (const PolicyError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Policy, ReadsSpecExample) {
  Policy p = Policy::parse(R"(plugin_dirs: [/usr/local/lib/thrum/plugins]
transports:
  local:     { enabled: true }
  network:   { enabled: true, allowed_subnets: [198.51.100.0/24] }
  tailscale: { enabled: false, mode: embedded, library: /usr/local/lib/libtailscale.so }
)",
                           "/etc/thrum/transports.yaml");
  EXPECT_EQ(p.source(), "/etc/thrum/transports.yaml");
  ASSERT_TRUE(p.has_plugin_dirs());
  EXPECT_EQ(p.plugin_dirs(), std::vector<std::filesystem::path>{"/usr/local/lib/thrum/plugins"});
  EXPECT_TRUE(p.enabled("local"));
  EXPECT_TRUE(p.enabled("network"));
  EXPECT_FALSE(p.enabled("tailscale"));
  EXPECT_FALSE(p.enabled("uds")) << "a transports map is an allow-list";
  EXPECT_EQ(p.options("network"),
            nlohmann::json::parse(R"({"allowed_subnets": ["198.51.100.0/24"]})"));
  EXPECT_EQ(p.options("tailscale"),
            nlohmann::json::parse(
                R"({"mode": "embedded", "library": "/usr/local/lib/libtailscale.so"})"));
  EXPECT_EQ(p.options("local"), nlohmann::json::object());
}

TEST(Policy, ScalarOptionsKeepTheirTypes) {
  Policy p = Policy::parse(
      "transports:\n  x: {port: 7000, ratio: 0.5, tls: false, name: \"007\", raw: 007x}\n", "f");
  EXPECT_EQ(p.options("x"),
            nlohmann::json::parse(
                R"({"port": 7000, "ratio": 0.5, "tls": false, "name": "007", "raw": "007x"})"));
}

TEST(Policy, EmptyFileAndNoTransportsKeyEnableEverything) {
  EXPECT_TRUE(Policy::parse("", "f").enabled("anything"));
  EXPECT_TRUE(Policy::parse("plugin_dirs: [/x]\n", "f").enabled("anything"));
}

TEST(Policy, RelativePluginDirIsRelativeToThePolicyFile) {
  Policy p = Policy::parse("plugin_dirs: [plugins, /abs]\n", "/etc/thrum/transports.yaml");
  EXPECT_EQ(p.plugin_dirs(), (std::vector<std::filesystem::path>{"/etc/thrum/plugins", "/abs"}));
}

TEST(Policy, MalformedYamlNamesFileAndLine) {
  // The flow map opened on line 2 is still open when line 3 starts a new key.
  const std::string err =
      error_of("transports:\n  local: { enabled: true\n  network: {}\n", "/tmp/p.yaml");
  EXPECT_EQ(err.rfind("/tmp/p.yaml:3: ", 0), 0u) << err;
  EXPECT_GT(err.size(), std::string("/tmp/p.yaml:3: ").size()) << "the problem is described";
}

TEST(Policy, ErrorAtEndOfFileNamesTheLastLine) {
  const std::string err = error_of("plugin_dirs: [a, b\n", "p.yaml");
  EXPECT_EQ(err.rfind("p.yaml:1: ", 0), 0u) << err;
}

TEST(Policy, TabIndentationIsAnErrorOnItsLine) {
  EXPECT_EQ(error_of("transports:\n  local:\n\t  enabled: true\n", "p.yaml").rfind("p.yaml:3: ", 0),
            0u)
      << error_of("transports:\n  local:\n\t  enabled: true\n", "p.yaml");
}

TEST(Policy, WrongTypeForEnabledNamesKeyAndLine) {
  EXPECT_EQ(error_of("transports:\n  local: { enabled: true }\n  network: { enabled: maybe }\n",
                     "p.yaml"),
            "p.yaml:3: transports.network.enabled: expected true or false, got \"maybe\"");
  EXPECT_EQ(error_of("transports:\n  network:\n    enabled: \"true\"\n", "p.yaml"),
            "p.yaml:3: transports.network.enabled: expected true or false, got \"true\"");
}

TEST(Policy, UnknownTopLevelKeyIsAnError) {
  EXPECT_EQ(error_of("plugin_dirs: []\ntransport:\n  local: {}\n", "p.yaml"),
            "p.yaml:2: unknown key \"transport\" (expected plugin_dirs or transports)");
}

TEST(Policy, WrongShapesAreErrors) {
  EXPECT_EQ(error_of("plugin_dirs: /usr/lib\n", "p.yaml"),
            "p.yaml:1: plugin_dirs: expected a list of directories, got a scalar");
  EXPECT_EQ(error_of("transports: [local]\n", "p.yaml"),
            "p.yaml:1: transports: expected a map of transport ids, got a list");
  EXPECT_EQ(error_of("transports:\n  local: yes\n", "p.yaml"),
            "p.yaml:2: transports.local: expected a map like { enabled: true }, got a scalar");
  EXPECT_EQ(error_of("transports:\n  Local: {}\n", "p.yaml"),
            "p.yaml:2: transports: \"Local\" is not a transport id ([a-z0-9_]+)");
  EXPECT_EQ(error_of("- a\n- b\n", "p.yaml"),
            "p.yaml:1: expected a map with plugin_dirs and transports, got a list");
}

TEST(Policy, DuplicateTransportIsAnError) {
  EXPECT_EQ(error_of("transports:\n  local: {}\n  local: {enabled: false}\n", "p.yaml"),
            "p.yaml:3: transports: \"local\" is listed twice");
}

TEST(Policy, LocateUsesEnvThenEtcThenNone) {
  test::TempDir d;
  const auto etc = d / "transports.yaml";
  {
    test::ScopedEnv env("THRUM_POLICY", nullptr);
    EXPECT_EQ(Policy::locate(etc), std::nullopt);
    test::write_file(etc, "transports: {}\n");
    EXPECT_EQ(Policy::locate(etc), etc);
  }
  test::ScopedEnv env("THRUM_POLICY", "/nonexistent/policy.yaml");
  EXPECT_EQ(Policy::locate(etc), std::filesystem::path("/nonexistent/policy.yaml"));
}

TEST(Policy, MissingExplicitFileIsAnError) {
  try {
    Policy::load_file("/nonexistent/policy.yaml");
    FAIL() << "expected PolicyError";
  } catch (const PolicyError& e) {
    EXPECT_EQ(std::string(e.what()),
              "/nonexistent/policy.yaml: cannot read policy file: No such file or directory");
  }
}

}  // namespace
}  // namespace thrum::core
