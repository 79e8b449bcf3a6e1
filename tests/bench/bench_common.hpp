#pragma once

// Shared by the benchmarks: a throwaway repo with a running daemon, driven through the real
// `thrum` binary (THRUM_TEST_BINARY) and raw Unix-socket connections.

#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>  // environ

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/process.hpp"
#include "support/rpc_socket.hpp"

namespace thrum::bench {

namespace fs = std::filesystem;
using json = nlohmann::json;
using steady = std::chrono::steady_clock;

/// A temp repo with `thrum init` done and the daemon started; stopped and removed on destruction.
class BenchRepo {
 public:
  BenchRepo() {
    std::string tmpl = (fs::temp_directory_path() / "thrum-bench-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    base_ = tmpl;
    root_ = base_ / "repo";
    fs::create_directories(root_);
    must({"init"});
    must({"daemon", "start"});
  }
  ~BenchRepo() {
    test::run_thrum({"daemon", "stop"}, root_);
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  const fs::path& root() const { return root_; }
  fs::path sock() const { return root_ / ".thrum" / "var" / "thrum.sock"; }

  test::RunResult must(const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env = {}) const {
    auto r = test::run_thrum(args, root_, env);
    if (r.exit_code != 0) {
      std::string a;
      for (const auto& x : args) a += " " + x;
      throw std::runtime_error("thrum" + a + " failed: " + r.out + r.err);
    }
    return r;
  }
  void register_agent(const std::string& name) const {
    must({"quickstart", "--name", name, "--role", "bench"}, {{"THRUM_NAME", name}});
  }

 private:
  fs::path base_, root_;
};

struct Summary {
  double min, median, p90, p99, max, mean;
};

inline Summary summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
  };
  double sum = 0;
  for (double x : v) sum += x;
  return Summary{v.front(), at(0.5),  at(0.9),
                 at(0.99),  v.back(), sum / static_cast<double>(v.size())};
}

inline std::string machine_description() {
  std::string cpu;
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  utsname u{};
  ::uname(&u);
  return cpu + ", " + std::to_string(std::thread::hardware_concurrency()) + " logical CPUs, " +
         u.sysname + " " + u.release;
}

/// `clients` persistent Unix-socket connections, each with one send outstanding, `total` sends
/// in all, from agents s0..s<clients-1> to `to`. Returns (seconds, per-request latencies in ms).
inline std::pair<double, std::vector<double>> send_burst(const fs::path& sock, int clients,
                                                         int total, const std::string& to,
                                                         const std::string& tag) {
  std::vector<std::vector<double>> lat(static_cast<size_t>(clients));
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> ts;
  for (int c = 0; c < clients; ++c) {
    ts.emplace_back([&, c] {
      test::UnixRpcClient conn(sock);
      const std::string agent = "s" + std::to_string(c);
      const int n = total / clients + (c < total % clients ? 1 : 0);
      lat[static_cast<size_t>(c)].reserve(static_cast<size_t>(n));
      ++ready;
      while (!go) std::this_thread::yield();
      for (int i = 0; i < n; ++i) {
        const auto t0 = steady::now();
        auto r =
            conn.call("message.send",
                      {{"caller_agent_id", agent},
                       {"to", to},
                       {"content", tag + " c" + std::to_string(c) + " #" + std::to_string(i)}});
        const auto t1 = steady::now();
        if (!r.is_object() || !r.contains("result")) ++failures;
        lat[static_cast<size_t>(c)].push_back(
            std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
    });
  }
  while (ready < clients) std::this_thread::yield();
  const auto start = steady::now();
  go = true;
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(steady::now() - start).count();
  if (failures) throw std::runtime_error(std::to_string(failures.load()) + " sends failed");
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  return {secs, all};
}

/// The three load averages, "1.23 0.98 0.75", to print beside every figure.
inline std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

/// This process's environment with `extra` ("NAME=value") added; an entry of `extra` replaces
/// the variable of the same name.
inline std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string_view var(*e);
    const bool replaced = std::any_of(extra.begin(), extra.end(), [&](const std::string& x) {
      const auto eq = x.find('=');
      return var.substr(0, eq + 1) == std::string_view(x).substr(0, eq + 1);
    });
    if (!replaced) env.emplace_back(var);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

/// A null-terminated argv/envp array pointing into `strings` (which must outlive it).
inline std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& x : strings) out.push_back(x.data());
  out.push_back(nullptr);
  return out;
}

/// Wall time in ms of one `program args...` run in `cwd`, stdout and stderr discarded, with
/// THRUM_NAME=`thrum_name` when one is given. Throws when it fails to start or exits non-zero.
inline double time_program(const std::string& program, const fs::path& cwd,
                           std::vector<std::string> args, const std::string& thrum_name = "") {
  args.insert(args.begin(), program);
  std::vector<char*> argv = c_strings(args);
  std::vector<std::string> env =
      environment_with(thrum_name.empty() ? std::vector<std::string>{}
                                          : std::vector<std::string>{"THRUM_NAME=" + thrum_name});
  std::vector<char*> envp = c_strings(env);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  pid_t pid = 0;
  const auto t0 = steady::now();
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawn " + program + " failed");
  int status = 0;
  ::waitpid(pid, &status, 0);
  const auto t1 = steady::now();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error(program + " failed");
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

}  // namespace thrum::bench
