// peers.json (SPEC §6.3): decoded field by field; a file that cannot be used is moved aside
// (0600), named in problems(), and the registry starts empty — never a crash or raw exception.
#include <stdlib.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "support/helpers.hpp"
#include "thrum/common/fs_util.hpp"
#include "thrum/core/peer_registry.hpp"

namespace thrum::core {
namespace {

namespace fs = std::filesystem;
using test::file_mode;
using test::slurp;

const char* kToken = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

std::string good_file() {
  return std::string(R"({"schema": 1, "local": {"daemon_id": "d_me", "peer_port": 4100},
    "peers": [{"name": "laptop", "address": "192.0.2.7:4100", "daemon_id": "d_other",
               "token": ")") +
         kToken + R"(", "transport": "network", "role": "dialer", "proxy_prefix": "laptop",
               "remote_agents": ["alice", "bob"], "last_seq": 42, "paired_at": "2026-01-01T00:00:00Z"}]})";
}

class PeersFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "thrum-peers-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "peers.json";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path moved_file() const {
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path().filename().string().rfind("peers.json.corrupt-", 0) == 0) return e.path();
    return {};
  }
  /// Loads `text` as peers.json and expects it refused: moved aside, registry empty, the
  /// problem naming `expect` and never the raw nlohmann text.
  void expect_refused(const std::string& text, const std::string& expect) {
    atomic_write_file(path_, text, 0644);
    PeerRegistry reg(path_, "d_me");
    EXPECT_TRUE(reg.peers().empty());
    ASSERT_EQ(reg.problems().size(), 1u);
    const std::string& problem = reg.problems()[0];
    EXPECT_NE(problem.find(expect), std::string::npos) << problem;
    EXPECT_EQ(problem.find("type_error"), std::string::npos) << problem;
    EXPECT_EQ(problem.find("[json.exception"), std::string::npos) << problem;
    EXPECT_EQ(problem.find(kToken), std::string::npos) << "the token must not be quoted";
    const fs::path moved = moved_file();
    ASSERT_FALSE(moved.empty()) << "the file must be moved aside, not overwritten";
    EXPECT_NE(problem.find(moved.string()), std::string::npos) << problem;
    EXPECT_EQ(slurp(moved), text) << "kept byte for byte for the user";
    EXPECT_EQ(file_mode(moved), 0600) << "the moved copy holds tokens";
    EXPECT_FALSE(fs::exists(path_));
  }

  fs::path dir_, path_;
};

TEST_F(PeersFileTest, GoodFileDecodesEveryField) {
  atomic_write_file(path_, good_file(), 0600);
  PeerRegistry reg(path_, "d_me");
  ASSERT_TRUE(reg.problems().empty()) << reg.problems()[0];
  ASSERT_EQ(reg.peers().size(), 1u);
  const auto& p = reg.peers()[0];
  EXPECT_EQ(p.name, "laptop");
  EXPECT_EQ(p.token, kToken);
  EXPECT_EQ(p.last_seq, 42);
  EXPECT_EQ(p.remote_agents, (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(reg.local().value("peer_port", 0), 4100) << "local settings survive";
}

TEST_F(PeersFileTest, WronglyTypedFieldIsNamedAndTheFileMovedAside) {
  // Before: the daemon did not start, printing a raw type_error.
  std::string text = good_file();
  text.replace(text.find("42"), 2, "\"42\"");
  expect_refused(text, "peers[0].last_seq: expected an integer, got a string");
}

TEST_F(PeersFileTest, WronglyTypedSchemaOrLocalIdIsRefused) {
  expect_refused(R"({"schema": "1", "local": {}, "peers": []})", "\"schema\": expected");
  fs::remove(moved_file());
  expect_refused(R"({"schema": 1, "local": {"daemon_id": 7}, "peers": []})",
                 "\"local.daemon_id\": expected a string, got a number");
}

TEST_F(PeersFileTest, WrongShapesAreRefused) {
  expect_refused(R"({"peers": [{"name": "x", "remote_agents": ["a", 1]}]})",
                 "peers[0].remote_agents[1]: expected a string");
  fs::remove(moved_file());
  expect_refused(R"({"peers": [{"name": "x"}, 3]})", "peers[1]: expected an object");
  fs::remove(moved_file());
  expect_refused(R"({"peers": [{"address": "192.0.2.1:1"}]})", "peers[0].name: missing");
  fs::remove(moved_file());
  expect_refused(R"({"peers": {"x": 1}})", "\"peers\": expected a list");
  fs::remove(moved_file());
  expect_refused("\"peers\"", "expected an object");
}

TEST_F(PeersFileTest, DeepDocumentIsRefusedWithoutRecursing) {
  // 60,000 levels: copying such a value used to overflow the stack at start.
  expect_refused(R"({"schema": 1, "peers": [], "local": {"x": )" + std::string(60000, '[') +
                     std::string(60000, ']') + "}}",
                 "nests deeper than");
}

TEST_F(PeersFileTest, InvalidUtf8IsRefused) {
  std::string text = good_file();
  text.replace(text.find("laptop"), 6, "lap\xff\xfeop");
  expect_refused(text, "not valid JSON (or not valid UTF-8)");
}

TEST_F(PeersFileTest, LegacyBareArrayIsMigratedWithABackup) {
  atomic_write_file(path_, R"([{"name": "old", "token": "t"}])", 0600);
  PeerRegistry reg(path_, "d_me");
  ASSERT_TRUE(reg.problems().empty());
  ASSERT_EQ(reg.peers().size(), 1u);
  EXPECT_TRUE(fs::exists(dir_ / "peers.json.pre-rotation-bak"));
  std::string error;
  auto again = decode_peers_file(slurp(path_), error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(again->schema, PeerRegistry::kSchema);
  EXPECT_EQ(again->local_daemon_id, "d_me");
}

TEST(PeersFileDecoder, NullFieldsMeanUnsetAndUnknownKeysAreIgnored) {
  std::string error;
  auto f = decode_peers_file(
      R"({"schema": 1, "peers": [{"name": "n", "address": null, "future_key": {"a": 1}}]})", error);
  ASSERT_TRUE(f) << error;
  ASSERT_EQ(f->peers.size(), 1u);
  EXPECT_EQ(f->peers[0].address, "");
}

TEST(PeersFileDecoder, HugeUnsignedLastSeqIsRefused) {
  std::string error;
  EXPECT_FALSE(
      decode_peers_file(R"({"peers": [{"name": "n", "last_seq": 18446744073709551615}]})", error));
  EXPECT_NE(error.find("peers[0].last_seq"), std::string::npos) << error;
}

}  // namespace
}  // namespace thrum::core
