// The rotation of var/daemon.log is set in .thrum/config.json (issue 15): daemon.log_max_bytes
// and daemon.log_files. A real daemon started with `thrum daemon start`, made to log a lot by
// WebSocket upgrades without the client secret (each refused one logs a line).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/helpers.hpp"
#include "support/process.hpp"
#include "support/raw_http.hpp"
#include "support/temp_repo.hpp"

namespace thrum::test {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

void set_daemon_config(const TempRepo& repo, const json& values) {
  const fs::path path = repo.root() / ".thrum" / "config.json";
  json doc = parse_json(slurp(path));
  if (!doc.is_object()) doc = json::object();
  for (const auto& [k, v] : values.items()) doc["daemon"][k] = v;
  std::ofstream(path) << doc.dump(2);
}

std::vector<std::string> lines_of(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

/// The `<UTC timestamp>` a log line starts with (ISO 8601, so it sorts as text).
std::string stamp(const std::string& line) {
  return line.substr(0, line.find(' '));
}

TEST(LogRotation, TheConfiguredSizeAndCountHoldUnderLoad) {
  constexpr std::size_t kLimit = 64 * 1024;
  constexpr std::size_t kLongestLine = 200;  // far longer than any line this test causes
  TempRepo repo;
  set_daemon_config(repo, {{"log_max_bytes", kLimit}, {"log_files", 2}});
  const fs::path log = repo.var() / "daemon.log";
  // Left by an earlier start that kept more files: the first rotation drops them.
  std::ofstream(repo.var() / "daemon.log.3") << "old\n";
  std::ofstream(repo.var() / "daemon.log.7") << "old\n";
  // An old rotation readable by others (another umask, an older version) is closed at start.
  std::ofstream(repo.var() / "daemon.log.1") << "old\n";
  fs::permissions(repo.var() / "daemon.log.1", fs::perms(0644));
  repo.start_daemon();
  EXPECT_EQ(file_mode(repo.var() / "daemon.log.1"), 0600);
  const auto port = *read_ws_port(repo.var());

  // ~70 bytes a line: about 5 rotations' worth.
  const std::string refused = websocket_upgrade_request(port, "/ws");
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(raw_http_exchange(port, refused).status, 401) << i;
  repo.stop_daemon();  // "daemon stopped" is then the newest line

  ASSERT_TRUE(fs::exists(log.string() + ".1"));
  ASSERT_TRUE(fs::exists(log.string() + ".2"));
  EXPECT_FALSE(fs::exists(log.string() + ".3")) << "log_files = 2 keeps two old files";
  EXPECT_FALSE(fs::exists(log.string() + ".7")) << "a stale rotation outlived the renumbering";

  for (const char* suffix : {"", ".1", ".2"}) {
    const auto size = fs::file_size(log.string() + suffix);
    EXPECT_LE(size, kLimit) << "daemon.log" << suffix << " grew past log_max_bytes";
    if (*suffix) {
      EXPECT_GT(size, kLimit - kLongestLine) << "daemon.log" << suffix << " rotated early";
    }
  }
  const auto current = lines_of(log), one = lines_of(log.string() + ".1"),
             two = lines_of(log.string() + ".2");
  ASSERT_FALSE(current.empty());
  ASSERT_FALSE(one.empty());
  ASSERT_FALSE(two.empty());
  EXPECT_NE(current.back().find(" info daemon stopped"), std::string::npos) << current.back();
  // Oldest in .2, newest in daemon.log.
  EXPECT_LE(stamp(two.back()), stamp(one.front()));
  EXPECT_LE(stamp(one.back()), stamp(current.front()));
  // More than two rotations happened: the file with the start-up lines is gone.
  for (const auto* lines : {&current, &one, &two})
    EXPECT_EQ(std::count_if(lines->begin(), lines->end(),
                            [](const std::string& l) {
                              return l.find("daemon starting") != std::string::npos;
                            }),
              0);
}

TEST(LogRotation, OutOfRangeValuesRefuseToStartNamingKeyAndRange) {
  struct Case {
    json values;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{{"log_max_bytes", 1000}},
       "daemon.log_max_bytes must be an integer from 65536 to 1073741824"},
      {{{"log_max_bytes", 2LL << 30}}, "daemon.log_max_bytes must be an integer from 65536"},
      {{{"log_max_bytes", "10M"}}, "daemon.log_max_bytes must be an integer"},
      {{{"log_files", 0}}, "daemon.log_files must be an integer from 1 to 100"},
      {{{"log_files", 101}}, "daemon.log_files must be an integer from 1 to 100"},
  };
  for (const auto& c : cases) {
    TempRepo repo;
    set_daemon_config(repo, c.values);
    auto r = repo.thrum({"daemon", "start"});
    EXPECT_NE(r.exit_code, 0) << c.values.dump();
    EXPECT_NE((r.out + r.err).find(c.expected), std::string::npos) << c.values.dump() << "\n"
                                                                   << r.out << r.err;
  }
}

TEST(LogRotation, TheBoundsThemselvesAreAccepted) {
  TempRepo repo;
  set_daemon_config(repo, {{"log_max_bytes", 64 * 1024}, {"log_files", 100}});
  repo.start_daemon();
  set_daemon_config(repo, {{"log_max_bytes", 1LL << 30}, {"log_files", 1}});
  auto r = repo.thrum({"daemon", "restart"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

}  // namespace
}  // namespace thrum::test
