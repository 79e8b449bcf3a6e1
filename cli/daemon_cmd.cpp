// thrum init; thrum daemon start|stop|restart|status|run (SPEC §3).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "cli.hpp"
#include "client.hpp"
#include "daemon_exe.hpp"
#include "format.hpp"
#include "thrum/common/config.hpp"
#include "thrum/common/daemon_lock.hpp"
#include "thrum/common/daemon_registry.hpp"
#include "thrum/common/fs_util.hpp"
#include "thrum/common/policy_record.hpp"

namespace thrum::cli {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string str_field(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

int cmd_init(Context& ctx) {
  core::RepoPaths paths = repo_for_init(ctx);
  if (!fs::is_directory(paths.root))
    throw Error("cannot initialize " + paths.root.string() + ": not a directory");
  const bool existed = fs::exists(paths.config);
  core::ensure_dir(paths.thrum, 0700);
  core::ensure_dir(paths.var, 0700);
  core::ensure_dir(paths.identities, 0700);
  core::Config config = core::Config::load(paths);
  for (const auto& p : config.problems()) std::cerr << "warning: " << p << "\n";
  bool changed = config.bootstrap_identity(paths);
  auto& doc = config.doc();
  if (!doc.contains("daemon")) {
    doc["daemon"] = {{"ws_port", "auto"}, {"peer_port", "auto"}};
    changed = true;
  }
  if (!doc.contains("peers")) {
    doc["peers"] = {{"auto_connect", true}, {"pairing_code_length", 16}};
    changed = true;
  }
  if (changed || !existed) config.save(paths);

  // Keep .thrum/ (tokens, the database) out of git.
  fs::path gi = paths.root / ".gitignore";
  auto text = core::read_file(gi).value_or("");
  bool listed = false;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line == ".thrum/" || line == ".thrum" || line == "/.thrum/" || line == "/.thrum")
      listed = true;
  if (!listed) {
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += ".thrum/\n";
    core::atomic_write_file(gi, text, 0644);
  }

  if (ctx.g.json) {
    print_json({{"status", existed ? "already_initialized" : "initialized"},
                {"repo_path", paths.root.string()},
                {"daemon_id", config.daemon_id()}});
    return 0;
  }
  if (existed) {
    std::cout << ok_mark() << " Already initialized: " << paths.thrum.string() << "\n";
  } else {
    std::cout << ok_mark() << " Initialized Thrum in " << paths.thrum.string() << "\n";
  }
  std::cout << "  daemon_id: " << config.daemon_id() << "\n";
  if (!ctx.g.quiet) std::cout << "\nNext: thrum daemon start\n";
  return 0;
}

/// The `Error: ...` lines a daemon that failed to start left in its log.
std::string startup_errors(const core::RepoPaths& paths, std::streamoff from) {
  std::ifstream in(paths.log);
  in.seekg(from);
  std::string line, out;
  while (std::getline(in, line))
    if (line.rfind("Error: ", 0) == 0) out += (out.empty() ? "" : "\n") + line.substr(7);
  return out;
}

struct Started {
  int pid;
  unsigned short ws_port;
};

Started start_daemon(const core::RepoPaths& paths, const std::optional<unsigned short>& keep_port) {
  if (auto pid = core::running_daemon(paths)) {
    // 0: the lock is held but the pid file not written yet (a daemon starting this instant);
    // it writes it right after taking the lock, so wait a moment to name it.
    for (int i = 0; i < 120 && *pid == 0; ++i) {
      std::this_thread::sleep_for(25ms);
      if (auto info = core::read_pid_file(paths)) pid = info->pid;
    }
    throw Error("daemon is already running (PID " +
                (*pid > 0 ? std::to_string(*pid) : std::string("unknown, still starting")) +
                ") for repo " + paths.root.string());
  }
  core::ensure_dir(paths.var, 0700);
  // The policy comes from this shell's environment; say so when it is not the one the previous
  // daemon ran with (a restart from another shell would otherwise change transports silently).
  const auto policy = core::policy_file_for_start();
  if (auto w = core::policy_change_warning(core::recorded_policy_source(paths),
                                           policy ? policy->string() : "");
      !w.empty())
    std::cerr << "warning: " << w << "\n";
  std::error_code ec;
  const std::streamoff log_start =
      fs::exists(paths.log, ec) ? static_cast<std::streamoff>(fs::file_size(paths.log, ec)) : 0;
  // The daemon is its own executable beside this one (docs/design-decisions.md); a missing one is
  // an error naming the path, before anything is forked.
  const fs::path exe = daemon_exe();
  const std::string root = paths.root.string();
  // The daemon says when it serves: `ready <pid> <port>` on this pipe (docs/design-decisions.md
  // "Readiness"); EOF without it means it exited, and its log says why.
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  std::fflush(nullptr);
  pid_t child = ::fork();
  if (child < 0) {
    const int e = errno;
    ::close(ready[0]);
    ::close(ready[1]);
    throw Error(std::string("fork: ") + std::strerror(e));
  }
  if (child == 0) {
    ::setsid();
    int devnull = ::open("/dev/null", O_RDONLY);
    int log = ::open(paths.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
    }
    // fd 3 = the pipe's write end, inherited (dup2 clears close-on-exec).
    if (ready[1] == 3) {
      ::fcntl(3, F_SETFD, 0);
    } else {
      ::dup2(ready[1], 3);
    }
    if (keep_port) ::setenv("THRUM_WS_PORT", std::to_string(*keep_port).c_str(), 1);
    const char* argv[] = {"thrum-daemon", "run",        "--repo", root.c_str(),
                          "--log-file",   "--ready-fd", "3",      nullptr};
    ::execv(exe.c_str(), const_cast<char* const*>(argv));
    // stderr is the log: startup_errors() shows this line to the user.
    const char* why = std::strerror(errno);
    const std::string msg = "Error: cannot run " + exe.string() + ": " + why + "\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg.data(), msg.size());
    _exit(127);
  }
  ::close(ready[1]);
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  bool eof = false;
  while (line.find('\n') == std::string::npos && !eof) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd pfd{ready[0], POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    char buf[128];
    ssize_t n = ::read(ready[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof = true;
    } else {
      line.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(ready[0]);
  int got_pid = 0;
  unsigned got_port = 0;
  if (std::sscanf(line.c_str(), "ready %d %u", &got_pid, &got_port) == 2 && got_pid == child &&
      got_port > 0 && got_port <= 65535)
    return Started{child, static_cast<unsigned short>(got_port)};
  if (eof) {
    // It closed the pipe without saying ready: it exited (or is exiting) on a start-up error.
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    auto why = startup_errors(paths, log_start);
    throw Error("daemon failed to start" +
                (why.empty() ? " (see " + paths.log.string() + ")" : ": " + why));
  }
  throw Error("daemon did not become ready within 10s (PID " + std::to_string(child) + "); see " +
              paths.log.string());
}

/// Sends SIGTERM and waits up to 15 s. Returns the pid stopped.
int stop_daemon(const core::RepoPaths& paths) {
  auto pid = core::running_daemon(paths);
  if (!pid) throw Error("daemon is not running");
  if (*pid == 0) {
    // Lock held but no pid file yet: the daemon is just starting. Give it a moment.
    for (int i = 0; i < 100 && *pid == 0; ++i) {
      std::this_thread::sleep_for(50ms);
      auto info = core::read_pid_file(paths);
      if (info) pid = info->pid;
    }
    if (*pid == 0) throw Error("daemon is starting but wrote no pid file; try again");
  }
  if (::kill(*pid, SIGTERM) != 0 && errno != ESRCH)
    throw Error("cannot signal PID " + std::to_string(*pid) + ": " + std::strerror(errno));
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!core::running_daemon(paths)) return *pid;
    std::this_thread::sleep_for(25ms);
  }
  throw Error("timeout waiting for daemon to stop (PID " + std::to_string(*pid) +
              " still running)");
}

int cmd_start(Context& ctx) {
  auto paths = require_repo(ctx);
  auto s = start_daemon(paths, std::nullopt);
  if (ctx.g.json) {
    print_json({{"status", "started"}, {"pid", s.pid}, {"ws_port", s.ws_port}});
  } else {
    std::cout << ok_mark() << " Daemon started (PID " << s.pid << ")\n";
    if (!ctx.g.quiet) std::cout << "  WebSocket: ws://127.0.0.1:" << s.ws_port << "/ws\n";
  }
  return 0;
}

int cmd_stop(Context& ctx) {
  auto paths = require_repo(ctx);
  int pid = stop_daemon(paths);
  if (ctx.g.json)
    print_json({{"status", "stopped"}, {"pid", pid}});
  else
    std::cout << ok_mark() << " Daemon stopped (PID " << pid << ")\n";
  return 0;
}

int cmd_restart(Context& ctx) {
  auto paths = require_repo(ctx);
  // Keep the port: agents and local peers holding ws://127.0.0.1:<port> keep working.
  auto port = core::read_port_file(paths.ws_port);
  if (core::running_daemon(paths)) stop_daemon(paths);
  auto s = start_daemon(paths, port);
  if (ctx.g.json) {
    print_json({{"status", "restarted"}, {"pid", s.pid}, {"ws_port", s.ws_port}});
  } else {
    std::cout << ok_mark() << " Daemon restarted (PID " << s.pid << ")\n";
  }
  return 0;
}

int cmd_status(Context& ctx) {
  auto paths = require_repo(ctx);
  auto pid = core::running_daemon(paths);
  json health, info;
  if (pid) {
    try {
      RpcClient c(paths.sock);
      health = c.call("health", json::object(), 5s);
      info = c.call("daemon.info", json::object(), 5s);
    } catch (const std::exception&) {
    }
  }
  if (!pid || health.is_null()) {
    if (ctx.g.json)
      print_json({{"running", false}, {"status", "stopped"}, {"repo_path", paths.root.string()}});
    else
      std::cout << "Daemon:   not running\n";
    return 1;
  }
  if (ctx.g.json) {
    health["running"] = true;
    if (info.is_object())
      for (const char* k : {"log", "policy", "plugins"})
        if (info.contains(k)) health[k] = info[k];
    print_json(health);
    return 0;
  }
  auto uptime = std::chrono::seconds(health.value("uptime_ms", 0LL) / 1000);
  std::cout << "Daemon:     running (PID " << health.value("pid", 0) << ")\n"
            << "Uptime:     " << duration_short(uptime) << "\n"
            << "Version:    " << health.value("version", "") << "\n"
            << "WebSocket:  ws://127.0.0.1:" << health.value("ws_port", 0) << "/ws\n";
  const auto& peers = health["peers"];
  std::cout << "Peers:      " << peers.value("connected", 0) << " connected / "
            << peers.value("total", 0) << " total\n";
  std::cout << "Transports: ";
  const auto& tr = health["transports"];
  if (!tr.is_array() || tr.empty()) {
    std::cout << "none loaded\n";
  } else {
    bool first = true;
    for (const auto& t : tr) {
      std::cout << (first ? "" : "\n            ") << t.value("id", "?") << " ("
                << t.value("status", "?") << ")";
      first = false;
    }
    std::cout << "\n";
  }
  if (info.is_object()) {
    std::cout << "Log:        " << str_field(info, "log") << "\n";
    const std::string policy = str_field(info, "policy");
    std::cout << "Policy:     "
              << (policy.empty() ? "none (every transport found is enabled)" : policy) << "\n";
    std::string set;
    if (info.contains("plugins") && info["plugins"].is_array())
      for (const auto& id : info["plugins"])
        if (id.is_string()) set += (set.empty() ? "" : ", ") + id.get<std::string>();
    std::cout << "Plugins:    " << (set.empty() ? "none loaded" : set) << "\n";
  }
  for (const auto& p : health["problems"])
    std::cout << "Problem:    " << p.get<std::string>() << "\n";
  const auto& id = health["identity"];
  std::cout << "\nIdentity:\n"
            << "  daemon_id:  " << id.value("daemon_id", "") << "\n"
            << "  repo_name:  " << id.value("repo_name", "") << "\n"
            << "  hostname:   " << id.value("hostname", "") << "\n"
            << "  repo_path:  " << id.value("repo_path", "") << "\n";
  if (!id.value("git_origin_url", "").empty())
    std::cout << "  git_origin: " << id.value("git_origin_url", "") << "\n";
  std::cout << "  init_at:    " << id.value("init_at", "") << "\n";
  return 0;
}

/// `thrum daemon list`: every daemon of this user on this machine, from the registry.
int cmd_list(Context& ctx) {
  core::DaemonRegistry registry;
  json out = json::array();
  for (const auto& e : registry.list()) {
    json d = {{"repo_path", e.repo_path},
              {"pid", e.pid},
              {"ws_port", e.ws_port},
              {"started_at", e.started_at},
              {"log", e.log},
              {"uptime_ms", nullptr},
              {"peers", nullptr}};
    try {  // uptime and peers from the daemon itself; an unresponsive one still gets listed
      RpcClient c(core::RepoPaths::for_root(e.repo_path).sock);
      json h = c.call("health", json::object(), 2s);
      if (h.contains("uptime_ms") && h["uptime_ms"].is_number_integer())
        d["uptime_ms"] = h["uptime_ms"];
      if (h.contains("peers") && h["peers"].is_object()) d["peers"] = h["peers"];
    } catch (const std::exception&) {
    }
    out.push_back(std::move(d));
  }
  if (ctx.g.json) {
    print_json({{"daemons", out}, {"registry", registry.dir().string()}});
    return 0;
  }
  if (out.empty()) {
    std::cout << "No daemons running for this user (registry " << registry.dir().string() << ")\n";
    return 0;
  }
  std::cout << "PID      WS PORT  UPTIME    PEERS        REPO\n";
  for (const auto& d : out) {
    std::string uptime = "?", peers = "?";
    if (d["uptime_ms"].is_number_integer())
      uptime = duration_short(std::chrono::seconds(d["uptime_ms"].get<long long>() / 1000));
    if (d["peers"].is_object())
      peers = std::to_string(d["peers"].value("connected", 0)) + "/" +
              std::to_string(d["peers"].value("total", 0)) + " up";
    std::printf("%-8d %-8u %-9s %-12s %s\n", d["pid"].get<int>(), d["ws_port"].get<unsigned>(),
                uptime.c_str(), peers.c_str(), d["repo_path"].get<std::string>().c_str());
  }
  return 0;
}

}  // namespace

void add_daemon_commands(CLI::App& app, Context& ctx) {
  auto* init = app.add_subcommand("init", "Create .thrum/ in this repo (config with identity)");
  init->callback([&ctx] { ctx.action = [&ctx] { return cmd_init(ctx); }; });

  auto* daemon = app.add_subcommand("daemon", "Start, stop and inspect this repo's daemon");
  daemon->require_subcommand(1);
  daemon->add_subcommand("start", "Start the daemon in the background")->callback([&ctx] {
    ctx.action = [&ctx] { return cmd_start(ctx); };
  });
  daemon->add_subcommand("stop", "Stop the daemon (SIGTERM, waits up to 15s)")->callback([&ctx] {
    ctx.action = [&ctx] { return cmd_stop(ctx); };
  });
  daemon->add_subcommand("restart", "Stop and start again on the same WebSocket port")
      ->callback([&ctx] { ctx.action = [&ctx] { return cmd_restart(ctx); }; });
  daemon->add_subcommand("status", "Show whether the daemon runs, and its health (exit 1 if not)")
      ->callback([&ctx] { ctx.action = [&ctx] { return cmd_status(ctx); }; });
  daemon->add_subcommand("list", "List every daemon of this user on this machine")
      ->callback([&ctx] { ctx.action = [&ctx] { return cmd_list(ctx); }; });
  daemon->add_subcommand("run", "Run the daemon in the foreground, logging to stderr")
      ->callback([&ctx] {
        ctx.action = [&ctx]() -> int {
          auto paths = ctx.g.repo ? core::RepoPaths::for_root(*ctx.g.repo) : require_repo(ctx);
          // Becomes the daemon: same pid, stdio, signals and exit code as before the split.
          exec_daemon({"run", "--repo", paths.root.string()});
        };
      });
}

}  // namespace thrum::cli
