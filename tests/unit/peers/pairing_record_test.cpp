// Which record a pairing stores (issue 13 items 1 and 3): --prefix, and re-pairing in place.
#include "peers/pairing_record.hpp"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace thrum::core::peers {
namespace {

namespace fs = std::filesystem;

class PairingRecord : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pairing-record-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  PeerRegistry registry() { return PeerRegistry(dir_ / "peers.json", "d_self"); }
  static PeerRecord paired(const std::string& name, const std::string& id,
                           const std::string& prefix) {
    PeerRecord r;
    r.name = name;
    r.daemon_id = id;
    r.proxy_prefix = prefix;
    r.token = std::string(64, 'a');
    r.remote_agents = {"reviewer"};
    return r;
  }
  fs::path dir_;
};

TEST(CheckPrefix, AcceptsAgentNameAlphabetAndRefusesTheRest) {
  EXPECT_EQ(check_prefix("mock-sf"), "");
  EXPECT_EQ(check_prefix("api_2"), "");
  for (const char* bad : {"", "Mock", "a:b", "a b", "ünï"}) {
    const std::string e = check_prefix(bad);
    EXPECT_NE(e.find("invalid prefix \"" + std::string(bad) + "\""), std::string::npos) << e;
  }
  EXPECT_NE(check_prefix(std::string(65, 'a')), "");
}

TEST_F(PairingRecord, NewDaemonGetsUniqueNameAndSlugPrefixOrTheOneAskedFor) {
  auto reg = registry();
  reg.upsert(paired("mock-salesforce", "d_one", "mock-salesforce"));
  PeerRecord r;
  r.daemon_id = "d_two";
  EXPECT_EQ(settle_pairing_record(reg, r, "mock-salesforce", ""), "");
  EXPECT_EQ(r.name, "mock-salesforce-2");
  EXPECT_EQ(r.proxy_prefix, "mock-salesforc-2");  // slugs keep to 16 characters
  EXPECT_FALSE(replaces_record(reg, r));

  PeerRecord s;
  s.daemon_id = "d_three";
  EXPECT_EQ(settle_pairing_record(reg, s, "Mock Salesforce", "mock-sf"), "");
  EXPECT_EQ(s.proxy_prefix, "mock-sf");
  EXPECT_TRUE(s.remote_agents.empty());
}

TEST_F(PairingRecord, SameDaemonKeepsNamePrefixAndProxies) {
  auto reg = registry();
  reg.upsert(paired("api", "d_api", "backend"));
  PeerRecord r;
  r.daemon_id = "d_api";
  EXPECT_EQ(settle_pairing_record(reg, r, "api-renamed", ""), "");
  EXPECT_EQ(r.name, "api");
  EXPECT_EQ(r.proxy_prefix, "backend");
  EXPECT_EQ(r.remote_agents, std::vector<std::string>{"reviewer"});
  EXPECT_TRUE(replaces_record(reg, r));
  // Its own prefix may be asked for again.
  PeerRecord again;
  again.daemon_id = "d_api";
  EXPECT_EQ(settle_pairing_record(reg, again, "api", "backend"), "");
}

TEST_F(PairingRecord, PrefixOfAnotherPeerIsRefused) {
  auto reg = registry();
  reg.upsert(paired("mock-salesforce", "d_one", "mock-sf"));
  PeerRecord r;
  r.daemon_id = "d_two";
  const std::string e = settle_pairing_record(reg, r, "other", "mock-sf");
  EXPECT_NE(e.find("prefix \"mock-sf\" is already used by peer \"mock-salesforce\""),
            std::string::npos)
      << e;
  EXPECT_NE(settle_pairing_record(reg, r, "other", "Bad!"), "");
}

}  // namespace
}  // namespace thrum::core::peers
