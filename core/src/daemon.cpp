#include "thrum/core/daemon.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <sstream>
#include <string_view>
#include <thread>

#include <spdlog/spdlog.h>

#include "client_secret.hpp"
#include "peers/peer_link.hpp"
#include "readiness.hpp"
#include "thrum/common/config.hpp"
#include "thrum/common/daemon_lock.hpp"
#include "thrum/common/daemon_registry.hpp"
#include "thrum/common/fs_util.hpp"
#include "thrum/common/ids.hpp"
#include "thrum/common/policy_record.hpp"
#include "thrum/core/incidents.hpp"
#include "thrum/core/json_rpc.hpp"
#include "thrum/core/log_throttle.hpp"
#include "thrum/core/logging.hpp"
#include "thrum/core/messaging.hpp"
#include "thrum/core/peer_manager.hpp"
#include "thrum/core/runtime_files.hpp"
#include "thrum/core/server_limits.hpp"
#include "thrum/core/store.hpp"
#include "thrum/core/unix_rpc_server.hpp"
#include "thrum/core/ws_server.hpp"
#ifdef THRUM_HAVE_PLUGIN_HOST
#include "thrum/core/plugin_host.hpp"
#endif

namespace thrum::core {

namespace asio = boost::asio;
using json = nlohmann::json;

namespace {

// Files an older version (or a different umask) left readable by others: the database and its
// -wal/-shm, the log and its rotations. Through O_NOFOLLOW descriptors, so a symlink is skipped.
void restrict_runtime_file_modes(const RepoPaths& paths) {
  std::error_code ec;
  const std::string db = paths.db.filename().string();
  const std::string log = paths.log.filename().string();
  const std::string log_stem = paths.log.stem().string();
  for (const auto& e : std::filesystem::directory_iterator(paths.var, ec)) {
    const std::string name = e.path().filename().string();
    const bool is_db = name.rfind(db, 0) == 0;
    // daemon.log, our rotations daemon.log.<n>, and an older version's (spdlog's) daemon.<n>.log.
    const bool is_log = name == log || name.rfind(log + ".", 0) == 0 ||
                        (name.rfind(log_stem + ".", 0) == 0 && e.path().extension() == ".log");
    if (is_db || is_log) tighten_mode(e.path(), 0600);
  }
}

/// A start-up failure, as the one "Error: ..." line `thrum daemon start` shows from the log.
/// One write(2) per line: a racing daemon appends to the same log (O_APPEND), and std::cerr,
/// unbuffered, would write each piece separately and let its lines land inside ours.
void startup_error(const std::string& what) {
  const std::string line = "Error: " + what + "\n";
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

/// EventLoop over the daemon's io_context.
class AsioLoop final : public EventLoop {
 public:
  explicit AsioLoop(asio::io_context& ioc) : ioc_(ioc) {}
  void post(std::function<void()> fn) override { asio::post(ioc_, std::move(fn)); }

  class AsioTimer final : public Timer {
   public:
    explicit AsioTimer(asio::io_context& ioc) : t(ioc) {}
    void cancel() override { t.cancel(); }
    asio::steady_timer t;
  };
  std::shared_ptr<Timer> run_after(std::chrono::milliseconds d, std::function<void()> fn) override {
    auto timer = std::make_shared<AsioTimer>(ioc_);
    timer->t.expires_after(d);
    timer->t.async_wait([timer, fn = std::move(fn)](boost::system::error_code ec) {
      if (!ec) fn();
    });
    return timer;
  }

 private:
  asio::io_context& ioc_;
};

std::optional<unsigned short> env_port(const char* name, std::string& error) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 1 || n > 65535) {
    error = std::string(name) + " must be a port 1..65535, got \"" + v + "\"";
    return std::nullopt;
  }
  return static_cast<unsigned short>(n);
}

/// THRUM_STORE_COMMIT: where the store commits (docs/design-decisions.md, "Store: where commits
/// run"). "loop" (the default) or "thread"; anything else is refused at start.
std::optional<Store::CommitOn> env_commit_on(std::string& error) {
  const char* v = std::getenv("THRUM_STORE_COMMIT");
  if (!v || !*v || std::string_view(v) == "loop") return Store::CommitOn::kLoop;
  if (std::string_view(v) == "thread") return Store::CommitOn::kWriterThread;
  error = std::string("THRUM_STORE_COMMIT must be \"loop\" or \"thread\", got \"") + v + "\"";
  return std::nullopt;
}

/// THRUM_WAL_BATCH: whether the store hands each transaction's WAL frames to the file in one
/// write ("on", the default) or lets SQLite write two per page ("off": the kill switch for the
/// thrum-walbatch VFS; docs/design-decisions.md, "WAL writes batched per transaction").
std::optional<bool> env_wal_batch(std::string& error) {
  const char* v = std::getenv("THRUM_WAL_BATCH");
  if (!v || !*v || std::string_view(v) == "on") return true;
  if (std::string_view(v) == "off") return false;
  error = std::string("THRUM_WAL_BATCH must be \"on\" or \"off\", got \"") + v + "\"";
  return std::nullopt;
}

json incidents_json() {
  json out = json::object();
  for (unsigned k = 0; k < static_cast<unsigned>(Incident::kCount_); ++k) {
    const auto kind = static_cast<Incident>(k);
    out[std::string(incident_name(kind))] = Incidents::global().count(kind);
  }
  return out;
}

/// Runs the loop until it is stopped. An exception that reaches it (a completion handler that
/// threw) is logged, counted and the loop carries on: no input may stop the daemon.
void run_event_loop(asio::io_context& ioc) {
  LogThrottle throttle;
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      count_incident(Incident::kEventLoopException);
      if (auto n = throttle.admit())
        spdlog::error("event loop caught an exception error=\"{}\" occurrences={}", e.what(), n);
    } catch (...) {
      count_incident(Incident::kEventLoopException);
      if (auto n = throttle.admit())
        spdlog::error("event loop caught a non-standard exception occurrences={}", n);
    }
  }
}

#ifdef THRUM_HAVE_PLUGIN_HOST
/// var/policy.source; a failure costs only `daemon start`'s warning about a changed policy.
void record_policy(const RepoPaths& paths, const std::string& source) {
  try {
    record_policy_source(paths, source);
  } catch (const std::exception& e) {
    spdlog::warn("policy source not recorded path={} error=\"{}\"", paths.policy_source.string(),
                 e.what());
  }
}

/// SIGHUP: the policy file is read again; transports it newly disables stop (their peers show
/// `disabled`), newly enabled ones load and start. A policy that does not parse changes nothing.
void reload_policy(PluginHost& plugins, PeerManager& peers) {
  try {
    auto changed = plugins.reload_policy();
    std::string ids;
    for (const auto& id : changed) ids += (ids.empty() ? "" : ",") + id;
    spdlog::info("policy reloaded policy=\"{}\" changed=\"{}\"", plugins.policy_source(), ids);
    if (!changed.empty()) peers.transports_changed(changed);
  } catch (const PolicyError& e) {
    spdlog::error("policy reload refused, the previous policy stays in force error=\"{}\"",
                  e.what());
  } catch (const std::exception& e) {
    spdlog::error("policy reload failed error=\"{}\"", e.what());
  }
}
#endif

}  // namespace

int run_daemon(const DaemonOptions& opts) {
  RepoPaths own_paths = opts.paths;
  // A relocated socket is computed afresh (a record left by an earlier start may name a
  // runtime dir that is gone); it is recorded in var/ below, once it is ours.
  if (own_paths.socket_relocated()) own_paths.sock = relocated_socket_path(own_paths.root);
  const RepoPaths& paths = own_paths;
  // Until the SIGHUP handler below exists, a hangup must not kill a starting daemon.
  ::signal(SIGHUP, SIG_IGN);
  Readiness readiness(opts.ready_fd);
  if (!std::filesystem::is_directory(paths.thrum)) {
    startup_error("thrum is not initialized in " + paths.root.string() +
                  " - run 'thrum init' first");
    return 1;
  }
  // Everything the daemon creates (database, -wal/-shm, logs and rotated logs, runtime files)
  // is for its owner only; files that need another mode set it explicitly.
  ::umask(077);
  try {
    ensure_dir(paths.var, 0700);
    restrict_runtime_file_modes(paths);
  } catch (const std::exception& e) {
    startup_error(e.what());
    return 1;
  }

  std::unique_ptr<DaemonLock> lock;
  try {
    lock = DaemonLock::try_acquire(paths);
  } catch (const std::exception& e) {
    startup_error(e.what());
    return 1;
  }
  if (!lock) {
    // The winner writes its pid file right after taking the lock; a racing start may look in
    // that instant, so give it a moment to name the PID.
    auto info = read_pid_file(paths);
    for (int i = 0; i < 300 && !info; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      info = read_pid_file(paths);
    }
    startup_error("daemon is already running (PID " + (info ? std::to_string(info->pid) : "?") +
                  ") for repo " + paths.root.string());
    return 1;
  }

  // From here on ws.port, the socket and the pid file are ours, and go whenever we do.
  RuntimeFiles runtime_files(paths);
  runtime_files.install_crash_cleanup();
  const auto started = Clock::now();
  // Right after the lock, so a racing second start can name us (it reads this file).
  try {
    lock->write_pid_file(rfc3339_seconds(started));
  } catch (const std::exception& e) {
    startup_error(e.what());
    return 1;
  }
  if (opts.log_to_file)
    setup_daemon_logging(paths.log);
  else
    setup_stderr_logging();
  const auto started_steady = std::chrono::steady_clock::now();
  spdlog::info("daemon starting pid={} repo={} version={}", ::getpid(), paths.root.string(),
               THRUM_VERSION);

  // Configuration: bad values refuse to start (naming the key); a corrupt file is moved aside.
  Config config;
  try {
    config = Config::load(paths);
    for (const auto& p : config.problems()) spdlog::error("config problem: {}", p);
  } catch (const std::exception& e) {
    spdlog::error("config load failed error=\"{}\"", e.what());
    startup_error(e.what());
    return 1;
  }
  // Validate before bootstrapping the identity: a wrongly typed identity.daemon_id must be
  // reported, not silently replaced by a new id.
  if (auto errs = config.validate(); !errs.empty()) {
    for (const auto& e : errs) {
      spdlog::error("config invalid: {}", e);
      startup_error(paths.config.string() + ": " + e);
    }
    return 1;
  }
  std::vector<std::string> limit_errors;
  const ServerLimits limits = server_limits(config, limit_errors);
  const LogRotation rotation = log_rotation(config, limit_errors);
  for (const auto& e : limit_errors) {
    spdlog::error("config invalid: {}", e);
    startup_error(paths.config.string() + ": " + e);
  }
  if (!limit_errors.empty()) return 1;
  set_log_rotation(rotation);
  try {
    if (config.bootstrap_identity(paths)) config.save(paths);
  } catch (const std::exception& e) {
    spdlog::error("config save failed error=\"{}\"", e.what());
    startup_error(e.what());
    return 1;
  }
  std::string port_error;
  auto env_ws = env_port("THRUM_WS_PORT", port_error);
  if (!port_error.empty()) {
    startup_error(port_error);
    return 1;
  }

#ifdef THRUM_HAVE_PLUGIN_HOST
  std::unique_ptr<PluginHost> plugins;
  try {
    plugins = PluginHost::load(PluginHost::Options{opts.exe_path.parent_path()});
  } catch (const PolicyError& e) {
    spdlog::error("transport policy invalid: {}", e.what());
    startup_error(e.what());
    return 1;
  }
#endif

  asio::io_context ioc(1);
  AsioLoop loop(ioc);
  std::string commit_error;
  const auto commit_on = env_commit_on(commit_error);
  const auto wal_batch = commit_on ? env_wal_batch(commit_error) : std::nullopt;
  if (!commit_on || !wal_batch) {
    spdlog::error("daemon start failed error=\"{}\"", commit_error);
    startup_error(commit_error);
    return 1;
  }
  std::unique_ptr<Store> store;
  try {
    store = std::make_unique<Store>(paths.db, loop, *commit_on, *wal_batch);
  } catch (const std::exception& e) {
    spdlog::error("store open failed error=\"{}\"", e.what());
    startup_error("cannot open " + paths.db.string() + ": " + e.what());
    return 1;
  }

  rpc::Dispatcher dispatcher;
  Messaging messaging(
      Messaging::Options{paths, config.daemon_id(), config.max_message_body_bytes()}, *store, loop);
  messaging.register_methods(dispatcher);
#ifdef THRUM_HAVE_PLUGIN_HOST
  register_plugin_methods(dispatcher, *plugins);
#endif

  PeerManager::Options peer_opts;
  peer_opts.paths = paths;
  peer_opts.daemon_id = config.daemon_id();
  peer_opts.repo_name = config.repo_name();
  peer_opts.hostname = config.hostname();
  peer_opts.git_origin_url = config.git_origin_url();
  peer_opts.peers_name = config.peers_name();
  peer_opts.pairing_code_length = config.pairing_code_length();
  peer_opts.auto_connect = config.auto_connect();
  peer_opts.peer_port = config.peer_port();
  std::unique_ptr<PeerManager> peers;
  try {
    peers =
        std::make_unique<PeerManager>(peer_opts, ioc, loop, *store, messaging,
                                      [&](const std::string& id, std::string* why) -> Transport {
#ifdef THRUM_HAVE_PLUGIN_HOST
                                        return plugins->transport(id, why);
#else
          if (why) *why = "this build has no plugin support";
          return {};
#endif
                                      });
  } catch (const std::exception& e) {
    spdlog::error("peer registry failed error=\"{}\"", e.what());
    startup_error("cannot load " + paths.peers.string() + ": " + e.what());
    return 1;
  }
  for (const auto& p : peers->problems()) spdlog::error("peers problem: {}", p);
  messaging.set_router(peers.get());
  peers->register_methods(dispatcher);

  WsServer::Options ws_opts;
  try {
    ws_opts.client_secret = create_client_secret(paths.var / "ws.secret");
  } catch (const std::exception& e) {
    spdlog::error("cannot write the ws client secret error=\"{}\"", e.what());
    startup_error(e.what());
    return 1;
  }
  ws_opts.max_connections = limits.max_connections;
  WsServer ws(ioc, dispatcher, std::move(ws_opts));
  ws.set_peer_handler(
      [&peers](std::unique_ptr<PeerUpgrade> up) { peers->handle_upgrade(std::move(up)); });
  UnixRpcServer unix_server(
      ioc, paths.sock, dispatcher,
      UnixRpcServer::Options{limits.max_connections,
                             std::chrono::milliseconds(limits.unix_idle_timeout)});
  unsigned short ws_port = 0;

  dispatcher.add("health", [&](const json&, const rpc::CallContext&, rpc::Respond respond) {
    auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started_steady)
                      .count();
    json problems = config.problems();
    for (const auto& p : peers->problems()) problems.push_back(p);
    json transports = json::array();
#ifdef THRUM_HAVE_PLUGIN_HOST
    transports = plugins->list_json();
#endif
    auto stats = store->stats();
    respond(json{{"status", "ok"},
                 {"pid", ::getpid()},
                 {"version", THRUM_VERSION},
                 {"started_at", rfc3339_seconds(started)},
                 {"uptime_ms", uptime},
                 {"repo_id", paths.root.filename().string()},
                 {"repo_path", paths.root.string()},
                 {"ws_port", ws_port},
                 {"ws_clients", ws.client_count()},
                 {"problems", problems},
                 {"incidents", incidents_json()},
                 {"transports", transports},
                 {"peers", peers->summary()},
                 {"store",
                  {{"commits", stats.commits},
                   {"unsynced_commits", stats.unsynced_commits},
                   {"wal_bytes", stats.wal_bytes},
                   {"wal_batch", stats.wal_batch},
                   {"writes", stats.jobs}}},
                 {"identity",
                  {{"daemon_id", config.daemon_id()},
                   {"repo_name", config.repo_name()},
                   {"hostname", config.hostname()},
                   {"repo_path", paths.root.string()},
                   {"git_origin_url", config.git_origin_url()},
                   {"init_at", config.init_at()}}}});
  });

  messaging.on_message([&ws](const StoredMessage& m) {
    if (ws.client_count() == 0) return;  // the params cost a few allocations per message
    // Only the agents the message concerns: its recipients and its author.
    std::vector<std::string> audience = m.recipients;
    audience.push_back(m.author_id);
    ws.notify_agents("notification.message", Messaging::notification_params(m), audience);
  });

  try {
    if (paths.socket_relocated()) {
      if (auto e = prepare_socket_dir(paths); !e.empty()) throw std::runtime_error(e);
      clean_stale_sockets(paths.sock.parent_path());
      atomic_write_file(paths.sock_record, paths.sock.string() + "\n", 0600, Durability::kRuntime);
      spdlog::info("socket relocated: the repo path is too long for .thrum/var/ socket={}",
                   paths.sock.string());
    } else {
      ::unlink(paths.sock_record.c_str());
    }
    unix_server.start();
    auto required = env_ws ? env_ws : config.ws_port();
    ws_port = ws.listen(required, read_port_file(paths.ws_port_last));
    atomic_write_file(paths.ws_port_last, std::to_string(ws_port) + "\n", 0600,
                      Durability::kRuntime);
    // Written last: its presence tells `daemon start` (and local peers) that we are serving.
    atomic_write_file(paths.ws_port, std::to_string(ws_port) + "\n", 0600, Durability::kRuntime);
  } catch (const std::exception& e) {
    spdlog::error("daemon start failed error=\"{}\"", e.what());
    startup_error(e.what());
    unix_server.stop();
    ws.stop();
    store->close();
    ::unlink(paths.ws_port.c_str());
    lock->remove_pid_file();
    return 1;
  }
  peers->start(ws_port);
  // `thrum daemon list`: this user's daemons across repos. A failure here costs only the listing.
  const DaemonRegistry daemon_registry;
  try {
    daemon_registry.add(DaemonEntry{::getpid(), paths.root.string(), ws_port,
                                    rfc3339_seconds(started), daemon_log_target()});
  } catch (const std::exception& e) {
    spdlog::warn("daemon registry not written dir={} error=\"{}\"", daemon_registry.dir().string(),
                 e.what());
  }
#ifdef THRUM_HAVE_PLUGIN_HOST
  // What the next `daemon start` compares its own policy with. Only once serving: a daemon
  // that failed to start applied no policy.
  record_policy(paths, plugins->policy_source());
#endif
  dispatcher.add("daemon.info", [&](const json&, const rpc::CallContext&, rpc::Respond respond) {
    json info = {{"log", daemon_log_target()}, {"policy", ""}, {"plugins", json::array()}};
#ifdef THRUM_HAVE_PLUGIN_HOST
    info["policy"] = plugins->policy_source();
    info["plugins"] = plugins->registry().ids();
#endif
    respond(info);
  });

  asio::signal_set signals(ioc, SIGTERM, SIGINT);
  ::signal(SIGPIPE, SIG_IGN);
  signals.async_wait([&](boost::system::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("daemon stopping signal={}", sig);
    if (auto why = readiness.stopping(); !why.empty()) spdlog::warn("notify failed: {}", why);
    daemon_registry.remove(paths.root.string(), ::getpid());
    ws.stop();
    peers->shutdown();
    ::unlink(paths.ws_port.c_str());
    unix_server.stop();
    ioc.stop();
  });
  // Only now, with SIGTERM caught, is the daemon ready: a stop that follows "ready" at once
  // (systemd, a test, a script) still runs the clean shutdown.
  spdlog::info("daemon ready socket={} ws=ws://127.0.0.1:{}/ws daemon_id={}", paths.sock.string(),
               ws_port, config.daemon_id());

  // SIGHUP: reopen the log (after logrotate), re-read the operator policy and apply it.
  asio::signal_set hangup(ioc, SIGHUP);
  std::function<void()> await_hangup = [&] {
    hangup.async_wait([&](boost::system::error_code ec, int) {
      if (ec) return;
      reopen_daemon_log();
      readiness.reloading();
      spdlog::info("daemon reload signal=SIGHUP log={}", daemon_log_target());
#ifdef THRUM_HAVE_PLUGIN_HOST
      reload_policy(*plugins, *peers);
      record_policy(paths, plugins->policy_source());
      readiness.reloaded("policy " + plugins->policy_source());
#else
      readiness.reloaded("reloaded");
#endif
      await_hangup();
    });
  };
  await_hangup();

  // READY once the loop runs, i.e. once the socket answers (ws.port exists already).
  asio::post(ioc, [&] {
    if (auto why = readiness.ready(::getpid(), ws_port, "serving " + paths.root.string());
        !why.empty())
      spdlog::warn("readiness notification failed: {}", why);
  });

  run_event_loop(ioc);

  // Everything queued is committed before the pid file and lock go away.
  peers->shutdown();
  messaging.set_router(nullptr);
  // Transports go before the pid file: the tailscale node is released while we still own it.
  plugins.reset();
  store->close();
  ::unlink(paths.ws_port.c_str());
  daemon_registry.remove(paths.root.string(), ::getpid());
  lock->remove_pid_file();
  spdlog::info("daemon stopped");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace thrum::core
