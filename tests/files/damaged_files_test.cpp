// What a user sees when a file under .thrum/ is damaged or exposed, with the real `thrum` binary
// and daemon: the daemon starts with the rest, says what it moved aside and why, and keeps its
// database and logs private.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "support/helpers.hpp"
#include "support/temp_repo.hpp"

namespace thrum::test {
namespace {

namespace fs = std::filesystem;

fs::path moved_aside(const fs::path& dir, const std::string& name) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(name + ".corrupt-", 0) == 0) return e.path();
  return {};
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

TEST(DamagedFiles, WronglyTypedPeersJsonIsMovedAsideAndTheDaemonStarts) {
  TempRepo repo;
  const std::string text =
      R"({"schema": "one", "local": {"daemon_id": "x"}, "peers": [{"name": "p", "last_seq": "7"}]})";
  write(repo.var() / "peers.json", text);
  repo.start_daemon();  // before: the daemon did not start, printing a raw type_error
  const fs::path moved = moved_aside(repo.var(), "peers.json");
  ASSERT_FALSE(moved.empty());
  EXPECT_EQ(slurp(moved), text);
  EXPECT_EQ(file_mode(moved), 0600);
  auto status = repo.thrum({"daemon", "status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("Problem:    peers.json could not be used (\"schema\": expected"),
            std::string::npos)
      << status.out;
  EXPECT_NE(status.out.find(moved.string()), std::string::npos) << status.out;
  const std::string log = repo.daemon_log();
  EXPECT_NE(log.find("peers.json unusable, moved aside"), std::string::npos) << log;
  EXPECT_EQ(log.find("type_error"), std::string::npos) << log;
  auto peers = repo.thrum({"peer", "list"});
  EXPECT_EQ(peers.exit_code, 0) << peers.err;
}

TEST(DamagedFiles, DeepPeersJsonDoesNotKillTheDaemonAtStart) {
  TempRepo repo;
  write(repo.var() / "peers.json",
        R"({"peers": [], "local": )" + std::string(60000, '[') + std::string(60000, ']') + "}");
  repo.start_daemon();  // before: SIGSEGV with an empty log
  EXPECT_FALSE(moved_aside(repo.var(), "peers.json").empty());
  auto status = repo.thrum({"daemon", "status"});
  EXPECT_NE(status.out.find("nests deeper than"), std::string::npos) << status.out;
}

TEST(DamagedFiles, ConfigWithInvalidUtf8IsMovedAsideAndDefaultsUsed) {
  TempRepo repo;
  const fs::path cfg = repo.root() / ".thrum" / "config.json";
  write(cfg, "{\"peers\": {\"name\": \"caf\xe9\"}}");
  repo.start_daemon();  // before: a raw type_error.316 and no daemon
  const fs::path moved = moved_aside(repo.root() / ".thrum", "config.json");
  ASSERT_FALSE(moved.empty());
  EXPECT_EQ(file_mode(moved), 0600);
  auto status = repo.thrum({"daemon", "status"});
  EXPECT_NE(status.out.find("not valid UTF-8"), std::string::npos) << status.out;
  EXPECT_TRUE(parse_json(slurp(cfg)).is_object());
}

TEST(DamagedFiles, WronglyTypedDaemonIdIsReportedNotReplaced) {
  TempRepo repo;
  const fs::path cfg = repo.root() / ".thrum" / "config.json";
  write(cfg, R"({"identity": {"daemon_id": 42}})");
  auto r = repo.thrum({"daemon", "start"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err).find("identity.daemon_id must be a string, got a number"),
            std::string::npos)
      << r.out << r.err;
  EXPECT_EQ(slurp(cfg), R"({"identity": {"daemon_id": 42}})") << "left for the user to fix";
}

TEST(DamagedFiles, DatabaseAndLogsArePrivate) {
  TempRepo repo;
  // Left by an older version or another umask: tightened at start.
  write(repo.var() / "daemon.1.log", "old rotated log\n");
  ::chmod((repo.var() / "daemon.1.log").c_str(), 0644);
  repo.start_daemon();
  repo.register_agent("alice");
  auto sent = repo.thrum({"send", "hello", "--to", "@alice"}, TempRepo::as("alice"));
  EXPECT_EQ(sent.exit_code, 0) << sent.err;
  for (const char* name :
       {"thrum.db", "thrum.db-wal", "thrum.db-shm", "daemon.log", "daemon.1.log"}) {
    const fs::path p = repo.var() / name;
    if (!fs::exists(p)) {
      EXPECT_STRNE(name, "thrum.db") << "the database must exist";
      continue;
    }
    EXPECT_EQ(file_mode(p), 0600) << name;
  }
}

TEST(DamagedFiles, SymlinkedVarToASharedDirIsRefusedAndItsTargetUntouched) {
  TempRepo repo;
  const fs::path shared = repo.root() / "shared-var";
  fs::create_directory(shared);
  ::chmod(shared.c_str(), 0755);
  fs::remove_all(repo.var());
  fs::create_directory_symlink(shared, repo.var());
  auto r = repo.thrum({"daemon", "start"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("is a symlink to " + shared.string()), std::string::npos) << r.err;
  EXPECT_EQ(file_mode(shared), 0755) << "before: the link's target was chmodded";
}

}  // namespace
}  // namespace thrum::test
