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
  // Relative: made absolute, since `daemon status` shows it to shells elsewhere.
  test::ScopedEnv rel("THRUM_POLICY", "conf/./p.yaml");
  EXPECT_EQ(Policy::locate(etc), std::filesystem::current_path() / "conf" / "p.yaml");
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

namespace thrum::core {
namespace {

std::string billion_laughs(int levels) {
  std::string y =
      "transports:\n  network:\n    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= levels; ++i) {
    const std::string prev = "*l" + std::to_string(i - 1);
    y += "    l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 9; ++k) y += (k ? ", " : "") + prev;
    y += "]\n";
  }
  return y;
}

TEST(PolicyBounds, BillionLaughsIsRefusedWithFileAndLine) {
  // 9^10 values once expanded: refused after the first 10,000 instead of hanging.
  const std::string err = error_of(billion_laughs(9), "/tmp/laughs.yaml");
  EXPECT_EQ(err.rfind("/tmp/laughs.yaml:", 0), 0u) << err;
  EXPECT_NE(err.find("expand to more than 10000 values"), std::string::npos) << err;
}

TEST(PolicyBounds, AFewAliasesStillWork) {
  auto p = Policy::parse(billion_laughs(2), "/tmp/p.yaml");  // 9 + 81 + 729 values
  EXPECT_EQ(p.options("network")["l2"].size(), 9u);
  EXPECT_EQ(p.options("network")["l2"][0][0][0], "lol");
}

TEST(PolicyBounds, DeepOptionsAreRefusedWithFileAndLine) {
  std::string deep =
      "transports:\n  network:\n    x: " + std::string(40, '[') + "1" + std::string(40, ']') + "\n";
  const std::string err = error_of(deep, "/tmp/deep.yaml");
  EXPECT_EQ(err.rfind("/tmp/deep.yaml:3: ", 0), 0u) << err;
  EXPECT_NE(err.find("deeper than"), std::string::npos) << err;
}

TEST(PolicyBounds, VeryDeepYamlIsAnErrorNotACrash) {
  // yaml-cpp's own recursion guard (depth 2000) answers before any value is built.
  const std::string err =
      error_of("transports: " + std::string(100000, '[') + std::string(100000, ']') + "\n",
               "/tmp/verydeep.yaml");
  EXPECT_EQ(err.rfind("/tmp/verydeep.yaml:", 0), 0u) << err;
}

TEST(PolicyBounds, UnknownKeyInsideTransportsIsTheTransportsToRefuse) {
  // The policy keeps a transport's options for its plugin (which refuses unknown keys); a
  // top-level typo is refused here, with its line.
  const std::string err = error_of("plugin_dirs: []\ntransport:\n  local: {}\n", "/tmp/t.yaml");
  EXPECT_EQ(err.rfind("/tmp/t.yaml:2: unknown key \"transport\"", 0), 0u) << err;
}

}  // namespace
}  // namespace thrum::core
