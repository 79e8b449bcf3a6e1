// Daemon lifecycle (SPEC §3) with the real `thrum` binary: the files a running daemon owns, one
// daemon per repo, recovery after kill -9, restart on the same port, and refusals that say why.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/helpers.hpp"
#include "support/process.hpp"
#include "support/rpc_socket.hpp"
#include "support/temp_repo.hpp"

namespace thrum::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

/// The repo path as the daemon reports it (symlinks such as /tmp -> /private/tmp resolved).
std::string resolved(const fs::path& p) {
  return fs::weakly_canonical(p).string();
}

/// Rewrites one key of .thrum/config.json, keeping the rest.
void set_config(const TempRepo& repo, const std::string& section, const std::string& key,
                const json& value) {
  auto path = repo.root() / ".thrum" / "config.json";
  auto doc = nlohmann::ordered_json::parse(slurp(path));
  doc[section][key] = value;
  std::ofstream(path) << doc.dump(2) << "\n";
}

TEST(DaemonLifecycle, StartWritesPidSocketAndPortAndStopRemovesThem) {
  TempRepo repo;
  auto started = repo.thrum({"daemon", "start"});
  ASSERT_EQ(started.exit_code, 0) << started.out << started.err << repo.daemon_log();
  const int pid = repo.daemon_pid();
  ASSERT_GT(pid, 0);
  EXPECT_NE(started.out.find("Daemon started (PID " + std::to_string(pid) + ")"), std::string::npos)
      << started.out;
  EXPECT_TRUE(process_alive(pid));

  auto pid_doc = parse_json(slurp(repo.var() / "thrum.pid"));
  ASSERT_TRUE(pid_doc.is_object()) << slurp(repo.var() / "thrum.pid");
  EXPECT_EQ(pid_doc["pid"], pid);
  EXPECT_EQ(pid_doc["repo_path"], resolved(repo.root()));
  EXPECT_TRUE(pid_doc.contains("started_at"));

  struct stat st {};
  ASSERT_EQ(::lstat((repo.var() / "thrum.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "only the repo's owner may talk to the daemon";
  EXPECT_EQ(file_mode(repo.var()), 0700);

  const std::string port_text = slurp(repo.var() / "ws.port");
  auto port = read_ws_port(repo.var());
  ASSERT_TRUE(port.has_value()) << port_text;
  EXPECT_EQ(port_text, std::to_string(*port) + "\n");
  EXPECT_NE(started.out.find("ws://127.0.0.1:" + std::to_string(*port) + "/ws"), std::string::npos);

  auto status = repo.thrum({"daemon", "status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("running (PID " + std::to_string(pid) + ")"), std::string::npos)
      << status.out;
  EXPECT_NE(status.out.find(std::to_string(*port)), std::string::npos) << status.out;

  auto stopped = repo.thrum({"daemon", "stop"});
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_NE(stopped.out.find("Daemon stopped (PID " + std::to_string(pid) + ")"),
            std::string::npos);
  EXPECT_TRUE(wait_until([&] { return !process_alive(pid); }));
  EXPECT_FALSE(fs::exists(repo.var() / "ws.port"));
  EXPECT_FALSE(fs::exists(repo.var() / "thrum.sock"));
  EXPECT_FALSE(fs::exists(repo.var() / "thrum.pid"));
  EXPECT_NE(repo.daemon_log().find("daemon stopped"), std::string::npos);
}

TEST(DaemonLifecycle, StatusWhenStoppedExitsOneAndSaysNotRunning) {
  TempRepo repo;
  auto never = repo.thrum({"daemon", "status"});
  EXPECT_EQ(never.exit_code, 1);
  EXPECT_NE(never.out.find("not running"), std::string::npos) << never.out;

  repo.start_daemon();
  repo.stop_daemon();
  auto after = repo.thrum({"daemon", "status"});
  EXPECT_EQ(after.exit_code, 1);
  EXPECT_NE(after.out.find("not running"), std::string::npos) << after.out;

  auto as_json = repo.thrum({"--json", "daemon", "status"});
  EXPECT_EQ(as_json.exit_code, 1);
  auto doc = parse_json(as_json.out);
  ASSERT_TRUE(doc.is_object()) << as_json.out;
  EXPECT_EQ(doc["running"], false);

  auto stop_again = repo.thrum({"daemon", "stop"});
  EXPECT_EQ(stop_again.exit_code, 1);
  EXPECT_NE(stop_again.err.find("daemon is not running"), std::string::npos) << stop_again.err;
}

TEST(DaemonLifecycle, SecondStartIsRefusedWithThePid) {
  TempRepo repo;
  repo.start_daemon();
  const int pid = repo.daemon_pid();
  const std::string want = "daemon is already running (PID " + std::to_string(pid) + ") for repo " +
                           resolved(repo.root());

  auto second = repo.thrum({"daemon", "start"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find(want), std::string::npos) << second.err;

  // The foreground form must refuse too (not serve alongside), and promptly.
  auto fg = run_thrum({"daemon", "run"}, repo.root(), {}, std::nullopt, 10s);
  EXPECT_EQ(fg.exit_code, 1) << "exit -1 means it kept running: " << fg.out << fg.err;
  EXPECT_NE(fg.err.find(want), std::string::npos) << fg.err;

  EXPECT_TRUE(process_alive(pid));
  EXPECT_EQ(repo.daemon_pid(), pid) << "the refused attempts must not touch the pid file";
  UnixRpcClient c(repo.var() / "thrum.sock");
  EXPECT_EQ(c.call("health")["result"]["pid"], pid);
}

TEST(DaemonLifecycle, RecoversAfterKill9WithoutCleanupAndKeepsMessages) {
  TempRepo repo;
  repo.start_daemon();
  repo.register_agent("alice");
  repo.register_agent("bob");
  auto sent =
      repo.thrum({"--json", "send", "survives a crash", "--to", "@bob"}, TempRepo::as("alice"));
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  const std::string id = parse_json(sent.out)["message_id"].get<std::string>();

  const int pid = repo.daemon_pid();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(wait_until([&] { return !process_alive(pid); }));
  // What a crash leaves behind: the pid file and the socket.
  EXPECT_TRUE(fs::exists(repo.var() / "thrum.pid"));
  EXPECT_TRUE(fs::exists(repo.var() / "thrum.sock"));

  auto status = repo.thrum({"daemon", "status"});
  EXPECT_EQ(status.exit_code, 1);
  EXPECT_NE(status.out.find("not running"), std::string::npos) << status.out;

  auto restarted = repo.thrum({"daemon", "start"});
  ASSERT_EQ(restarted.exit_code, 0) << restarted.out << restarted.err << repo.daemon_log();
  const int pid2 = repo.daemon_pid();
  EXPECT_NE(pid2, pid);
  EXPECT_TRUE(process_alive(pid2));

  auto inbox = repo.thrum({"--json", "inbox"}, TempRepo::as("bob"));
  ASSERT_EQ(inbox.exit_code, 0) << inbox.err;
  auto doc = parse_json(inbox.out);
  ASSERT_EQ(doc["messages"].size(), 1u) << inbox.out;
  EXPECT_EQ(doc["messages"][0]["message_id"], id);
  EXPECT_EQ(doc["messages"][0]["body"], "survives a crash");
  // Agents registered before the crash are still known.
  auto whoami = repo.thrum({"--json", "whoami"}, TempRepo::as("alice"));
  EXPECT_EQ(whoami.exit_code, 0) << whoami.err;
}

TEST(DaemonLifecycle, ACrashingDaemonTakesItsPortFilePidAndSocketWithIt) {
#ifdef THRUM_TEST_SANITIZED
  GTEST_SKIP() << "the sanitizers' own fatal-signal handlers report crashes in this build";
#endif
  // Issue 11 finding 2: a port file left by a daemon that died says "dial me" to local peers,
  // at a port anyone may bind now. Every exit path that runs code removes it.
  for (int sig : {SIGSEGV, SIGABRT}) {
    TempRepo repo;
    repo.start_daemon();
    const int pid = repo.daemon_pid();
    ASSERT_GT(pid, 0);
    ASSERT_TRUE(fs::exists(repo.var() / "ws.port"));
    ::kill(pid, sig);
    ASSERT_TRUE(wait_until([&] { return !process_alive(pid); }, 10s));
    EXPECT_FALSE(fs::exists(repo.var() / "ws.port")) << "signal " << sig;
    EXPECT_FALSE(fs::exists(repo.var() / "thrum.pid")) << "signal " << sig;
    EXPECT_FALSE(fs::exists(repo.var() / "thrum.sock")) << "signal " << sig;
  }
}

TEST(DaemonLifecycle, AStalePortFileIsRemovedAsSoonAsTheNextDaemonHoldsTheLock) {
  TempRepo repo;
  repo.start_daemon();
  const int pid = repo.daemon_pid();
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(wait_until([&] { return !process_alive(pid); }, 10s));
  ASSERT_TRUE(fs::exists(repo.var() / "ws.port")) << "kill -9 runs no code";
  // A start that fails after taking the lock (a busy fixed port) still clears it.
  TempRepo other("other");
  other.start_daemon();
  const auto taken = read_ws_port(other.var());
  ASSERT_TRUE(taken.has_value());
  set_config(repo, "daemon", "ws_port", *taken);
  auto res = repo.thrum({"daemon", "start"});
  EXPECT_NE(res.exit_code, 0);
  EXPECT_FALSE(fs::exists(repo.var() / "ws.port"));
}

TEST(DaemonLifecycle, RestartKeepsTheWsPort) {
  TempRepo repo;
  repo.start_daemon();
  const int pid = repo.daemon_pid();
  auto port = read_ws_port(repo.var());
  ASSERT_TRUE(port.has_value());

  auto r = repo.thrum({"daemon", "restart"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << repo.daemon_log();
  const int pid2 = repo.daemon_pid();
  EXPECT_NE(pid2, pid);
  EXPECT_FALSE(process_alive(pid));
  EXPECT_EQ(read_ws_port(repo.var()), port);
  // And the port really serves /ws.
  WsRpcClient ws(*port, ws_auth(repo.var(), "probe"));
  EXPECT_EQ(ws.call("health")["result"]["pid"], pid2);
}

TEST(DaemonLifecycle, WsPortAutoReusesTheLastPortAfterStop) {
  TempRepo repo;
  repo.start_daemon();
  auto port = read_ws_port(repo.var());
  ASSERT_TRUE(port.has_value());
  repo.stop_daemon();
  repo.start_daemon();
  EXPECT_EQ(read_ws_port(repo.var()), port) << "agents holding ws://127.0.0.1:<port> keep working";
}

TEST(DaemonLifecycle, InvalidConfigValueRefusesToStartNamingTheKey) {
  TempRepo repo;
  set_config(repo, "daemon", "ws_port", "banana");
  auto r = repo.thrum({"daemon", "start"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("daemon.ws_port"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("banana"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(repo.var() / "ws.port"));
  EXPECT_EQ(repo.thrum({"daemon", "status"}).exit_code, 1);

  set_config(repo, "daemon", "ws_port", "auto");
  set_config(repo, "peers", "pairing_code_length", 11);
  auto r2 = repo.thrum({"daemon", "start"});
  EXPECT_EQ(r2.exit_code, 1);
  EXPECT_NE(r2.err.find("peers.pairing_code_length"), std::string::npos) << r2.err;

  set_config(repo, "peers", "pairing_code_length", 12);
  repo.start_daemon();
}

TEST(DaemonLifecycle, StartWithoutInitIsAClearError) {
  std::string tmpl = (fs::temp_directory_path() / "thrum-noinit-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const fs::path dir = tmpl;
  auto r = run_thrum({"daemon", "start"}, dir, {}, std::nullopt, 10s);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("thrum init"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / ".thrum")) << "a refused start must not create .thrum/";
  auto run = run_thrum({"daemon", "run"}, dir, {}, std::nullopt, 10s);
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
  EXPECT_NE(run.err.find("thrum init"), std::string::npos) << run.err;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(DaemonLifecycle, CorruptConfigIsMovedAsideAndReportedInStatus) {
  TempRepo repo;
  const auto cfg = repo.root() / ".thrum" / "config.json";
  std::ofstream(cfg) << "{ \"daemon\": oops";
  repo.start_daemon();
  bool moved = false;
  for (const auto& e : fs::directory_iterator(repo.root() / ".thrum")) {
    if (e.path().filename().string().rfind("config.json.corrupt-", 0) == 0) {
      moved = true;
      EXPECT_EQ(slurp(e.path()), "{ \"daemon\": oops");
    }
  }
  EXPECT_TRUE(moved);
  auto status = repo.thrum({"daemon", "status"});
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_NE(status.out.find("config.json.corrupt-"), std::string::npos)
      << "daemon status must tell the user about the moved file:\n"
      << status.out;
  EXPECT_TRUE(parse_json(slurp(cfg)).is_object()) << "a fresh config with identity was written";
}

TEST(DaemonLifecycle, SigtermShutsDownCleanly) {
  TempRepo repo;
  repo.start_daemon();
  const int pid = repo.daemon_pid();
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  ASSERT_TRUE(wait_until([&] { return !process_alive(pid); }, 15s));
  EXPECT_FALSE(fs::exists(repo.var() / "ws.port"));
  EXPECT_FALSE(fs::exists(repo.var() / "thrum.sock"));
  EXPECT_FALSE(fs::exists(repo.var() / "thrum.pid"));
  repo.start_daemon();  // and nothing stands in the way of the next start
}

TEST(DaemonLifecycle, InitCreatesPrivateFilesAndIgnoresThrumOnce) {
  TempRepo repo;  // ran `thrum init`
  const auto thrum_dir = repo.root() / ".thrum";
  EXPECT_EQ(file_mode(thrum_dir), 0700);
  EXPECT_EQ(file_mode(thrum_dir / "config.json"), 0600);
  auto cfg = parse_json(slurp(thrum_dir / "config.json"));
  ASSERT_TRUE(cfg.is_object());
  const std::string id = cfg["identity"]["daemon_id"];
  EXPECT_EQ(id.rfind("d_", 0), 0u) << id;
  EXPECT_EQ(slurp(repo.root() / ".gitignore"), ".thrum/\n");

  auto again = repo.thrum({"init"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("Already initialized"), std::string::npos) << again.out;
  EXPECT_EQ(parse_json(slurp(thrum_dir / "config.json"))["identity"]["daemon_id"], id)
      << "a second init keeps the daemon's identity";
  EXPECT_EQ(slurp(repo.root() / ".gitignore"), ".thrum/\n") << ".thrum/ is listed once";
}

TEST(DaemonLifecycle, InitKeepsAHandWrittenConfigAndBacksItUpOnce) {
  std::string tmpl = (fs::temp_directory_path() / "thrum-handcfg-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const fs::path root = tmpl;
  fs::create_directories(root / ".thrum");
  const std::string mine =
      R"({"team_notes": "keep me", "daemon": {"max_message_body_bytes": 4096}})";
  std::ofstream(root / ".thrum" / "config.json") << mine;
  std::ofstream(root / ".gitignore") << "build/";

  auto r = run_thrum({"init"}, root, {}, std::nullopt, 10s);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto cfg = nlohmann::ordered_json::parse(slurp(root / ".thrum" / "config.json"));
  EXPECT_EQ(cfg["team_notes"], "keep me");
  EXPECT_EQ(cfg["daemon"]["max_message_body_bytes"], 4096);
  EXPECT_TRUE(cfg["identity"]["daemon_id"].is_string());
  EXPECT_EQ(cfg.begin().key(), "team_notes") << "the user's keys keep their place";
  const auto bak = root / ".thrum" / "config.json.pre-identity-bak";
  EXPECT_EQ(slurp(bak), mine);
  EXPECT_EQ(slurp(root / ".gitignore"), "build/\n.thrum/\n");

  // Starting the daemon (which re-checks the identity) keeps both the keys and the backup.
  auto start = run_thrum({"daemon", "start"}, root, {}, std::nullopt, 15s);
  ASSERT_EQ(start.exit_code, 0) << start.err;
  auto stop = run_thrum({"daemon", "stop"}, root, {}, std::nullopt, 20s);
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(nlohmann::ordered_json::parse(slurp(root / ".thrum" / "config.json"))["team_notes"],
            "keep me");
  EXPECT_EQ(slurp(bak), mine);
  std::error_code ec;
  fs::remove_all(root, ec);
}

TEST(DaemonLifecycle, ConcurrentStartsRunExactlyOneDaemon) {
  TempRepo repo;
  Child a(THRUM_TEST_BINARY, {"daemon", "start"}, repo.root());
  Child b(THRUM_TEST_BINARY, {"daemon", "start"}, repo.root());
  auto ra = a.wait(20s);
  auto rb = b.wait(20s);
  EXPECT_EQ((ra.exit_code == 0) + (rb.exit_code == 0), 1)
      << "a: " << ra.exit_code << " " << ra.out << ra.err << "\nb: " << rb.exit_code << " "
      << rb.out << rb.err;
  const auto& loser = ra.exit_code == 0 ? rb : ra;
  const auto& winner = ra.exit_code == 0 ? ra : rb;
  EXPECT_NE(loser.err.find("already running"), std::string::npos) << loser.err;
  const int pid = repo.daemon_pid();
  EXPECT_TRUE(process_alive(pid));
  EXPECT_NE(winner.out.find("(PID " + std::to_string(pid) + ")"), std::string::npos)
      << "the winner reports the pid that actually serves: " << winner.out;
  if (loser.exit_code == 1) {
    EXPECT_NE(loser.err.find("(PID " + std::to_string(pid) + ")"), std::string::npos) << loser.err;
  }
}

TEST(DaemonLifecycle, RequiredWsPortInUseFailsClearlyAndLeavesNothingBehind) {
  TempRepo repo;
  // Hold a port with another daemon's /ws.
  TempRepo other("other");
  other.start_daemon();
  const auto taken = read_ws_port(other.var());
  ASSERT_TRUE(taken.has_value());
  set_config(repo, "daemon", "ws_port", *taken);
  auto r = repo.thrum({"daemon", "start"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(std::to_string(*taken)), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(repo.var() / "thrum.pid"));
  EXPECT_FALSE(fs::exists(repo.var() / "thrum.sock"));
  EXPECT_FALSE(fs::exists(repo.var() / "ws.port"));
  EXPECT_EQ(repo.thrum({"daemon", "status"}).exit_code, 1);
}

TEST(DaemonLifecycle, ThrumWsPortEnvChoosesThePort) {
  TempRepo probe("probe");
  probe.start_daemon();
  const auto port = *read_ws_port(probe.var());
  probe.stop_daemon();  // now free, and known to be usable on this machine
  TempRepo repo;
  repo.start_daemon({{"THRUM_WS_PORT", std::to_string(port)}});
  EXPECT_EQ(read_ws_port(repo.var()), port);
  repo.stop_daemon();
  auto bad =
      run_thrum({"daemon", "run"}, repo.root(), {{"THRUM_WS_PORT", "99999"}}, std::nullopt, 10s);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("THRUM_WS_PORT"), std::string::npos) << bad.err;
}

TEST(DaemonLifecycle, StoreCommitModeIsChosenByEnvironmentAndAWrongOneIsRefused) {
  // Both modes serve writes (a registration is a store commit); a typo is not silently the
  // default.
  for (const char* mode : {"thread", "loop"}) {
    TempRepo repo;
    repo.start_daemon({{"THRUM_STORE_COMMIT", mode}});
    UnixRpcClient c(repo.var() / "thrum.sock");
    auto r = c.call("agent.register", {{"name", "w1"}, {"role", "tester"}});
    EXPECT_FALSE(r.contains("error")) << mode << ": " << r.dump();
    EXPECT_TRUE(c.call("agent.list")["result"].dump().find("w1") != std::string::npos) << mode;
    repo.stop_daemon();
  }
  TempRepo repo;
  auto bad = run_thrum({"daemon", "run"}, repo.root(), {{"THRUM_STORE_COMMIT", "threads"}},
                       std::nullopt, 10s);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("THRUM_STORE_COMMIT must be \"loop\" or \"thread\", got \"threads\""),
            std::string::npos)
      << bad.err;
}

TEST(DaemonLifecycle, WalBatchingIsChosenByEnvironmentAndAWrongValueIsRefused) {
  // The kill switch for the thrum-walbatch VFS: both settings serve writes that survive a
  // restart, health says which one runs, and a typo is not silently the default.
  for (const char* mode : {"off", "on"}) {
    TempRepo repo;
    repo.start_daemon({{"THRUM_WAL_BATCH", mode}});
    {
      UnixRpcClient c(repo.var() / "thrum.sock");
      EXPECT_EQ(c.call("health")["result"]["store"]["wal_batch"], std::string(mode) == "on")
          << mode;
      auto r = c.call("agent.register", {{"name", "w1"}, {"role", "tester"}});
      EXPECT_FALSE(r.contains("error")) << mode << ": " << r.dump();
    }
    repo.stop_daemon();
    repo.start_daemon();
    UnixRpcClient c(repo.var() / "thrum.sock");
    EXPECT_NE(c.call("agent.list")["result"].dump().find("w1"), std::string::npos) << mode;
    repo.stop_daemon();
  }
  TempRepo repo;
  auto bad =
      run_thrum({"daemon", "run"}, repo.root(), {{"THRUM_WAL_BATCH", "no"}}, std::nullopt, 10s);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("THRUM_WAL_BATCH must be \"on\" or \"off\", got \"no\""),
            std::string::npos)
      << bad.err;
}

TEST(DaemonLifecycle, ForegroundRunStopsCleanlyOnSigint) {
  TempRepo repo;
  Child fg(THRUM_TEST_BINARY, {"daemon", "run"}, repo.root());
  ASSERT_TRUE(wait_until([&] { return read_ws_port(repo.var()).has_value(); }, 10s))
      << repo.daemon_log();
  EXPECT_EQ(repo.daemon_pid(), fg.pid());
  UnixRpcClient c(repo.var() / "thrum.sock");
  EXPECT_EQ(c.call("health")["result"]["pid"], fg.pid());
  fg.kill(SIGINT);
  auto r = fg.wait(15s);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(repo.var() / "ws.port"));
  EXPECT_FALSE(fs::exists(repo.var() / "thrum.sock"));
  EXPECT_FALSE(fs::exists(repo.var() / "thrum.pid"));
}

TEST(DaemonLifecycle, MissingThrumDaemonIsAnErrorNamingItsPath) {
  // `thrum` execs the `thrum-daemon` beside it; a copy of the CLI alone has none.
  TempRepo repo;
  const fs::path bin = repo.root() / "lonely-bin";
  fs::create_directories(bin);
  fs::copy_file(THRUM_TEST_BINARY, bin / "thrum");
  const std::string expected = (bin / "thrum-daemon").string();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"daemon", "start"}, std::vector<std::string>{"daemon", "run"}}) {
    auto r = run_process((bin / "thrum").string(), args, repo.root(), {}, std::nullopt, 10s);
    EXPECT_EQ(r.exit_code, 1) << args[1] << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("Error: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
  }
  EXPECT_EQ(repo.daemon_pid(), -1);
}

}  // namespace
}  // namespace thrum::test
