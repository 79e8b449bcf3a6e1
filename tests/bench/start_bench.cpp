// `thrum daemon start` wall time (issue 16 item 5): the CLI returns when the daemon says it is
// ready on a pipe, instead of polling ws.port + the socket every 25 ms. Both ways run in the
// same minute, interleaved, on the same repo:
//   poll   the previous algorithm, reproduced here: fork/exec `thrum-daemon run --log-file`,
//          then every 25 ms check var/ws.port and that the socket answers `health`
//   pipe   the same fork/exec with `--ready-fd 3`, blocking on the `ready <pid> <port>` line:
//          the two differ only in how the starter waits
//   cli    `thrum daemon start` as built, end to end (adds the CLI process itself)
//   anchor `/bin/true` spawned and waited, this machine's process floor
// Each start is followed by `thrum daemon stop` (not timed). Prints min/median/p90 per way, the
// ratio pipe/poll and the load average. Usage: thrum_bench_start [rounds, default 30]
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "support/rpc_socket.hpp"

namespace {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

double ms_since(steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

struct Stats {
  std::vector<double> v;
  double pct(double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1,
                      static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
  }
};

bool answers(const fs::path& sock) {
  try {
    thrum::test::UnixRpcClient c(sock);
    auto r = c.call("health", nlohmann::json::object(), 2s);
    return r.contains("result");
  } catch (const std::exception&) {
    return false;
  }
}

/// The old `daemon start`: fork, exec the daemon with stdio on the log, poll every 25 ms.
double start_polling(const fs::path& repo, const fs::path& daemon_exe) {
  const fs::path var = repo / ".thrum" / "var";
  const auto t0 = steady::now();
  pid_t child = ::fork();
  if (child == 0) {
    ::setsid();
    int log = ::open((var / "daemon.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(log, 1);
    ::dup2(log, 2);
    const std::string r = repo.string();
    const char* argv[] = {"thrum-daemon", "run", "--repo", r.c_str(), "--log-file", nullptr};
    ::execv(daemon_exe.c_str(), const_cast<char* const*>(argv));
    _exit(127);
  }
  for (;;) {
    if (fs::exists(var / "ws.port") && answers(var / "thrum.sock")) break;
    std::this_thread::sleep_for(25ms);
  }
  const double ms = ms_since(t0);
  // Reaped by `daemon stop` waiting for the lock; the zombie is collected here.
  std::thread([child] { ::waitpid(child, nullptr, 0); }).detach();
  return ms;
}

/// The new wait, same fork/exec as start_polling(): block on the daemon's ready line.
double start_pipe(const fs::path& repo, const fs::path& daemon_exe) {
  const fs::path var = repo / ".thrum" / "var";
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  const auto t0 = steady::now();
  pid_t child = ::fork();
  if (child == 0) {
    ::setsid();
    int log = ::open((var / "daemon.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::dup2(fds[1], 3);
    const std::string r = repo.string();
    const char* argv[] = {"thrum-daemon", "run",        "--repo", r.c_str(),
                          "--log-file",   "--ready-fd", "3",      nullptr};
    ::execv(daemon_exe.c_str(), const_cast<char* const*>(argv));
    _exit(127);
  }
  ::close(fds[1]);
  char buf[128];
  while (::read(fds[0], buf, sizeof buf) > 0 && !std::memchr(buf, '\n', sizeof buf)) {
  }
  const double ms = ms_since(t0);
  ::close(fds[0]);
  std::thread([child] { ::waitpid(child, nullptr, 0); }).detach();
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 30;
  std::string tmpl = (fs::temp_directory_path() / "thrum-bench-start-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return 1;
  const fs::path repo = fs::path(tmpl) / "repo";
  fs::create_directories(repo);
  const fs::path thrum = THRUM_TEST_BINARY;
  const fs::path daemon_exe = thrum.parent_path() / "thrum-daemon";
  thrum::test::run_thrum({"init", "-q"}, repo);
  // Warm-up: page cache, the plugin files, the database.
  for (int i = 0; i < 3; ++i) {
    thrum::test::run_thrum({"daemon", "start"}, repo);
    thrum::test::run_thrum({"daemon", "stop"}, repo);
  }
  Stats pipe, poll, floor, cli;
  for (int i = 0; i < rounds; ++i) {
    auto t0 = steady::now();
    thrum::test::run_process("/bin/true", {}, repo);
    floor.v.push_back(ms_since(t0));

    t0 = steady::now();
    auto r = thrum::test::run_thrum({"daemon", "start"}, repo);
    cli.v.push_back(ms_since(t0));
    if (r.exit_code != 0) {
      std::fprintf(stderr, "daemon start failed: %s%s\n", r.out.c_str(), r.err.c_str());
      return 1;
    }
    thrum::test::run_thrum({"daemon", "stop"}, repo);

    poll.v.push_back(start_polling(repo, daemon_exe));
    thrum::test::run_thrum({"daemon", "stop"}, repo);

    pipe.v.push_back(start_pipe(repo, daemon_exe));
    thrum::test::run_thrum({"daemon", "stop"}, repo);
  }
  double load[3] = {0, 0, 0};
  if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
    std::fclose(f);
  }
  std::printf("| way | runs | min ms | median ms | p90 ms |\n|---|---|---|---|---|\n");
  const std::vector<std::pair<const char*, Stats*>> rows{
      {"`/bin/true` (anchor)", &floor},
      {"fork/exec + poll every 25 ms (before)", &poll},
      {"**fork/exec + ready pipe (after)**", &pipe},
      {"`thrum daemon start` as built (CLI process + ready pipe)", &cli}};
  for (const auto& [name, s] : rows)
    std::printf("| %s | %zu | %.2f | %.2f | %.2f |\n", name, s->v.size(), s->pct(0), s->pct(0.5),
                s->pct(0.9));
  std::printf("\nratio pipe/poll (median): %.2f; load average %.2f %.2f %.2f\n",
              pipe.pct(0.5) / poll.pct(0.5), load[0], load[1], load[2]);
  std::error_code ec;
  fs::remove_all(tmpl, ec);
  return 0;
}
