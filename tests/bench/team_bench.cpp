// `thrum team` with many proxies (issue 16: "`thrum team` with 1,000 proxies ≤ 5 ms"): the real
// CLI binary spawned and waited for, output discarded, against `thrum --version` (process start
// without a daemon) and `/bin/true` as anchors, interleaved in the same run so the ratios hold
// under load. The proxies are `kind='proxy'` rows written into the stopped daemon's database,
// as pairing and `peer configure … add-agent` would leave them (no live peer: they show
// `unknown`).
//
//   thrum_bench_team [--proxies 1000] [--runs 30] [--before PATH]
//
// `--before PATH` adds a `thrum team` row for another CLI binary (e.g. one built from an earlier
// commit) run against the same daemon in the same interleaved rounds.
#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_common.hpp"

using namespace thrum::bench;

namespace {

/// Writes `n` proxy rows (`api:agent_0000`…) into the (stopped) daemon's database.
void add_proxies(const fs::path& db_path, int n) {
  sqlite3* db = nullptr;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK)
    throw std::runtime_error("cannot open " + db_path.string());
  auto exec = [&](const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string e = err ? err : "?";
      sqlite3_free(err);
      sqlite3_close(db);
      throw std::runtime_error("sqlite: " + e);
    }
  };
  exec("BEGIN");
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "agent_%04d", i);
    exec(std::string("INSERT INTO agents (agent_id, kind, role, peer_name, remote_name, "
                     "registered_at, last_seen_at) VALUES ('api:") +
         name + "', 'proxy', 'reviewer', 'api', '" + name +
         "', '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z')");
  }
  exec("COMMIT");
  sqlite3_close(db);
}

void report(const char* what, const std::vector<double>& v, double anchor_median) {
  const auto s = summarize(v);
  std::printf("| %s | %zu | %.2f | **%.2f** | %.2f | %.2f | %.2f× |\n", what, v.size(), s.min,
              s.median, s.p90, s.max, s.median / anchor_median);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int proxies = 1000, runs = 30;
  std::string before;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--proxies"))
      proxies = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--runs"))
      runs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--before"))
      before = argv[i + 1];
  }
  std::printf("machine: %s\n", machine_description().c_str());
  BenchRepo repo;
  repo.register_agent("me");
  repo.must({"daemon", "stop"});
  add_proxies(repo.root() / ".thrum" / "var" / "thrum.db", proxies);
  repo.must({"daemon", "start"});
  // One untimed run of each warms the page cache and the daemon's statements.
  time_program(THRUM_TEST_BINARY, repo.root(), {"team"});
  time_program(THRUM_TEST_BINARY, repo.root(), {"--json", "team"});

  const std::string load_before = loadavg();
  std::vector<double> t_true, t_version, t_team, t_json, t_before;
  for (int i = 0; i < runs; ++i) {  // interleaved: every figure sees the same load
    t_true.push_back(time_program("/bin/true", repo.root(), {}));
    t_version.push_back(time_program(THRUM_TEST_BINARY, repo.root(), {"--version"}));
    t_team.push_back(time_program(THRUM_TEST_BINARY, repo.root(), {"team"}));
    t_json.push_back(time_program(THRUM_TEST_BINARY, repo.root(), {"--json", "team"}));
    if (!before.empty()) t_before.push_back(time_program(before, repo.root(), {"team"}));
  }
  const double anchor = summarize(t_version).median;
  std::printf("team of 1 local agent + %d proxies; %d runs each, interleaved\n\n", proxies, runs);
  std::printf("| command | runs | min ms | median ms | p90 ms | max ms | median / `--version` |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  report("`/bin/true` (spawn + wait)", t_true, anchor);
  report("`thrum --version` (process start, no daemon)", t_version, anchor);
  report("`thrum team`", t_team, anchor);
  report("`thrum --json team` (every field)", t_json, anchor);
  if (!before.empty()) report(("`thrum team`, " + before).c_str(), t_before, anchor);
  std::printf("\nload average %s before, %s after\n", load_before.c_str(), loadavg().c_str());
  return 0;
}
