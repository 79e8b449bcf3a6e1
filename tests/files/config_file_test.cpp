// config.json: a file that cannot be used is moved aside (0600) and defaults apply; a value of
// the wrong type is named by validate() — never a raw exception, never a replaced identity.
#include <stdlib.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "support/helpers.hpp"
#include "thrum/common/config.hpp"
#include "thrum/common/fs_util.hpp"

namespace thrum::core {
namespace {

namespace fs = std::filesystem;
using test::file_mode;
using test::slurp;

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "thrum-cfg-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    base_ = tmpl;
    fs::create_directories(base_ / "repo" / ".thrum");
    paths_ = RepoPaths::for_root(base_ / "repo");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  fs::path moved_file() const {
    for (const auto& e : fs::directory_iterator(paths_.thrum))
      if (e.path().filename().string().rfind("config.json.corrupt-", 0) == 0) return e.path();
    return {};
  }
  void expect_moved_aside(const std::string& text, const std::string& why) {
    atomic_write_file(paths_.config, text, 0644);
    Config c = Config::load(paths_);
    ASSERT_EQ(c.problems().size(), 1u);
    EXPECT_NE(c.problems()[0].find(why), std::string::npos) << c.problems()[0];
    EXPECT_EQ(c.problems()[0].find("type_error"), std::string::npos) << c.problems()[0];
    EXPECT_EQ(c.daemon_id(), "") << "defaults";
    EXPECT_EQ(c.pairing_code_length(), Config::kDefaultPairingCodeLength);
    EXPECT_TRUE(c.validate().empty());
    const fs::path moved = moved_file();
    ASSERT_FALSE(moved.empty());
    EXPECT_EQ(slurp(moved), text);
    EXPECT_EQ(file_mode(moved), 0600);
  }
  fs::path base_;
  RepoPaths paths_;
};

TEST_F(ConfigFileTest, DeepDocumentIsMovedAsideAndDefaultsUsed) {
  expect_moved_aside("{\"x\": " + std::string(100000, '[') + std::string(100000, ']') + "}",
                     "nests deeper than");
}

TEST_F(ConfigFileTest, InvalidUtf8IsMovedAsideInsteadOfStoppingTheDaemon) {
  // Before: a raw type_error.316 when the document was dumped.
  expect_moved_aside("{\"peers\": {\"name\": \"caf\xe9\"}}", "not valid UTF-8");
}

TEST_F(ConfigFileTest, NotAnObjectIsMovedAside) {
  expect_moved_aside("[1, 2]", "expected a JSON object");
}

TEST_F(ConfigFileTest, WronglyTypedValuesAreNamedNotThrown) {
  atomic_write_file(paths_.config,
                    R"({"identity": {"daemon_id": 12}, "daemon": {"ws_port": [1]},
                        "peers": {"pairing_code_length": "16", "auto_connect": "yes"}})");
  Config c = Config::load(paths_);
  ASSERT_TRUE(c.problems().empty());
  const auto errs = c.validate();
  auto names = [&](const std::string& key) {
    for (const auto& e : errs)
      if (e.rfind(key, 0) == 0) return true;
    return false;
  };
  EXPECT_TRUE(names("identity.daemon_id must be a string, got a number"));
  EXPECT_TRUE(names("daemon.ws_port must be"));
  EXPECT_TRUE(names("peers.pairing_code_length must be"));
  EXPECT_TRUE(names("peers.auto_connect must be"));
  // The accessors fall back instead of throwing.
  EXPECT_EQ(c.daemon_id(), "");
  EXPECT_EQ(c.pairing_code_length(), Config::kDefaultPairingCodeLength);
  EXPECT_TRUE(c.auto_connect());
}

TEST_F(ConfigFileTest, SectionOfTheWrongTypeIsNamed) {
  atomic_write_file(paths_.config, R"({"daemon": "fast", "peers": []})");
  Config c = Config::load(paths_);
  const auto errs = c.validate();
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(errs[0].rfind("daemon must be an object, got a string", 0), 0u) << errs[0];
  EXPECT_EQ(errs[1].rfind("peers must be an object, got a list", 0), 0u) << errs[1];
}

TEST(ConfigDecoder, LongValuesAreCutInMessages) {
  std::string error;
  auto doc =
      decode_config("{\"daemon\": {\"ws_port\": \"" + std::string(5000, '9') + "\"}}", error);
  ASSERT_TRUE(doc) << error;
  Config c;
  c.doc() = *doc;
  const auto errs = c.validate();
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_LT(errs[0].size(), 200u) << errs[0];
}

}  // namespace
}  // namespace thrum::core
