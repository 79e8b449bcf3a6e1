// Config (SPEC §1): unknown keys survive a save, bad values are named, the identity backup is
// written once, and a corrupt file is moved aside rather than overwritten.
#include "thrum/common/config.hpp"

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/helpers.hpp"
#include "thrum/common/fs_util.hpp"

namespace thrum::core {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;
using test::slurp;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "thrum-config-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
    fs::create_directories(base_ / "repo" / ".thrum");
    paths_ = RepoPaths::for_root(base_ / "repo");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  void write_config(const std::string& text) { atomic_write_file(paths_.config, text, 0600); }

  std::vector<fs::path> files_starting_with(const std::string& prefix) const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(paths_.thrum))
      if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
    return out;
  }

  fs::path base_;
  RepoPaths paths_;
};

/// The one validation error that mentions `key`, or "" if none does.
std::string error_naming(const std::vector<std::string>& errs, const std::string& key) {
  for (const auto& e : errs)
    if (e.find(key) != std::string::npos) return e;
  return "";
}

Config config_with(const std::string& text) {
  Config c;
  c.doc() = ojson::parse(text);
  return c;
}

TEST_F(ConfigTest, MissingFileMeansDefaults) {
  Config c = Config::load(paths_);
  EXPECT_TRUE(c.problems().empty());
  EXPECT_TRUE(c.validate().empty());
  EXPECT_EQ(c.max_message_body_bytes(), Config::kDefaultMaxBodyBytes);
  EXPECT_EQ(c.pairing_code_length(), 16);
  EXPECT_FALSE(c.ws_port().has_value()) << "absent ws_port means auto";
  EXPECT_TRUE(c.auto_connect());
}

TEST_F(ConfigTest, KeepsUnknownKeysAndTheirOrderOnSave) {
  write_config(R"({
  "zeta": {"from": "a newer thrum"},
  "daemon": {"ws_port": "auto", "custom_knob": [1, 2, 3], "max_message_body_bytes": 4096},
  "alpha": "user note",
  "peers": {"pairing_code_length": 12}
})");
  Config c = Config::load(paths_);
  ASSERT_TRUE(c.problems().empty());
  EXPECT_EQ(c.max_message_body_bytes(), 4096);
  c.bootstrap_identity(paths_);
  c.save(paths_);

  auto saved = ojson::parse(slurp(paths_.config));
  std::vector<std::string> top;
  for (auto it = saved.begin(); it != saved.end(); ++it) top.push_back(it.key());
  // Existing keys keep their place; the new identity block is appended.
  EXPECT_EQ(top, (std::vector<std::string>{"zeta", "daemon", "alpha", "peers", "identity"}));
  EXPECT_EQ(saved["zeta"], ojson::parse(R"({"from": "a newer thrum"})"));
  EXPECT_EQ(saved["alpha"], "user note");
  std::vector<std::string> daemon_keys;
  for (auto it = saved["daemon"].begin(); it != saved["daemon"].end(); ++it)
    daemon_keys.push_back(it.key());
  EXPECT_EQ(daemon_keys,
            (std::vector<std::string>{"ws_port", "custom_knob", "max_message_body_bytes"}));
  EXPECT_EQ(saved["daemon"]["custom_knob"], ojson::parse("[1,2,3]"));
  EXPECT_EQ(test::file_mode(paths_.config), 0600);

  // And a second load/save round trip changes nothing.
  Config again = Config::load(paths_);
  EXPECT_FALSE(again.bootstrap_identity(paths_)) << "identity was already current";
  again.save(paths_);
  EXPECT_EQ(ojson::parse(slurp(paths_.config)), saved);
}

TEST_F(ConfigTest, ValidateNamesTheKeyOfABadWsPort) {
  for (const char* bad : {R"("eighty")", "70000", "-1", "true", R"("0x50")"}) {
    auto errs = config_with(std::string(R"({"daemon": {"ws_port": )") + bad + "}}").validate();
    ASSERT_EQ(errs.size(), 1u) << bad;
    EXPECT_NE(errs[0].find("daemon.ws_port"), std::string::npos) << errs[0];
  }
  for (const char* good : {R"("auto")", "8080", R"("8080")", "0"}) {
    auto errs = config_with(std::string(R"({"daemon": {"ws_port": )") + good + "}}").validate();
    EXPECT_TRUE(errs.empty()) << good << ": " << (errs.empty() ? "" : errs[0]);
  }
  EXPECT_EQ(config_with(R"({"daemon": {"ws_port": "8080"}})").ws_port(), 8080);
}

TEST_F(ConfigTest, PairingCodeLengthAccepts12To16AndRefusesTheRest) {
  for (int n : {11, 17, 4, 0}) {
    auto errs =
        config_with(R"({"peers": {"pairing_code_length": )" + std::to_string(n) + "}}").validate();
    ASSERT_EQ(errs.size(), 1u) << n;
    EXPECT_NE(errs[0].find("peers.pairing_code_length"), std::string::npos) << errs[0];
    EXPECT_NE(errs[0].find(std::to_string(n)), std::string::npos)
        << "the error shows the refused value: " << errs[0];
  }
  for (int n : {12, 14, 16}) {
    Config c = config_with(R"({"peers": {"pairing_code_length": )" + std::to_string(n) + "}}");
    EXPECT_TRUE(c.validate().empty()) << n;
    EXPECT_EQ(c.pairing_code_length(), n);
  }
  auto errs = config_with(R"({"peers": {"pairing_code_length": "16"}})").validate();
  EXPECT_NE(error_naming(errs, "peers.pairing_code_length"), "") << "a string is not a length";
}

TEST_F(ConfigTest, ValidateReportsEveryBadKeyAtOnce) {
  auto errs = config_with(R"({"daemon": {"ws_port": "x", "max_message_body_bytes": "big"},
                              "peers": {"auto_connect": "yes", "pairing_code_length": 20}})")
                  .validate();
  EXPECT_EQ(errs.size(), 4u);
  EXPECT_NE(error_naming(errs, "daemon.ws_port"), "");
  EXPECT_NE(error_naming(errs, "daemon.max_message_body_bytes"), "");
  EXPECT_NE(error_naming(errs, "peers.auto_connect"), "");
  EXPECT_NE(error_naming(errs, "peers.pairing_code_length"), "");
}

TEST_F(ConfigTest, KeepsBackupOfPreIdentityFileOnce) {
  const std::string original = R"({"daemon": {"ws_port": "auto"}, "mine": 1})";
  write_config(original);
  const fs::path bak = fs::path(paths_.config) += ".pre-identity-bak";

  Config c = Config::load(paths_);
  ASSERT_TRUE(c.bootstrap_identity(paths_));
  const std::string first_id = c.daemon_id();
  EXPECT_EQ(first_id.rfind("d_", 0), 0u) << first_id;
  c.save(paths_);
  ASSERT_TRUE(fs::exists(bak));
  EXPECT_EQ(slurp(bak), original) << "the backup is the file as it was before Thrum touched it";
  EXPECT_EQ(test::file_mode(bak), 0600);

  // A rotation later must not replace the backup with the already-rotated file.
  Config c2 = Config::load(paths_);
  c2.rotate_daemon_id(paths_);
  EXPECT_NE(c2.daemon_id(), first_id);
  c2.save(paths_);
  Config c3 = Config::load(paths_);
  c3.rotate_daemon_id(paths_);
  c3.save(paths_);
  EXPECT_EQ(slurp(bak), original);
  EXPECT_EQ(files_starting_with("config.json.pre-identity-bak").size(), 1u);
  EXPECT_EQ(Config::load(paths_).daemon_id(), c3.daemon_id());
}

TEST_F(ConfigTest, BootstrapKeepsAnExistingDaemonId) {
  write_config(R"({"identity": {"daemon_id": "d_KEEPME"}})");
  Config c = Config::load(paths_);
  c.bootstrap_identity(paths_);
  EXPECT_EQ(c.daemon_id(), "d_KEEPME");
  EXPECT_EQ(c.repo_name(), "repo");
  EXPECT_EQ(c.doc()["identity"]["repo_path"], paths_.root.string());
  EXPECT_FALSE(fs::exists(fs::path(paths_.config) += ".pre-identity-bak"))
      << "no identity was created or rotated, so there is nothing to back up";
}

TEST_F(ConfigTest, CorruptFileIsMovedAsideAndNeverOverwritten) {
  write_config("{ this is not json");
  Config c = Config::load(paths_);
  ASSERT_EQ(c.problems().size(), 1u);
  EXPECT_NE(c.problems()[0].find("config.json.corrupt-"), std::string::npos) << c.problems()[0];
  EXPECT_FALSE(fs::exists(paths_.config)) << "the corrupt file is moved, not left in place";
  auto moved = files_starting_with("config.json.corrupt-");
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(slurp(moved[0]), "{ this is not json");
  EXPECT_TRUE(c.validate().empty()) << "defaults are used";

  // A second corruption (same second, most likely) gets its own file; the first is untouched.
  write_config("[\"an array is not a config\"]");
  Config c2 = Config::load(paths_);
  ASSERT_EQ(c2.problems().size(), 1u);
  auto moved2 = files_starting_with("config.json.corrupt-");
  ASSERT_EQ(moved2.size(), 2u);
  EXPECT_EQ(slurp(moved[0]), "{ this is not json");
  int arrays = 0;
  for (const auto& p : moved2) arrays += slurp(p) == "[\"an array is not a config\"]";
  EXPECT_EQ(arrays, 1);
}

}  // namespace
}  // namespace thrum::core
