// Operating the daemon like real software (issue 15): the foreground daemon logs to stderr,
// tells systemd when it serves (READY=1 on $NOTIFY_SOCKET), re-reads the operator policy on
// SIGHUP, and `thrum daemon list` shows this user's daemons. Real daemons, real sockets.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/peer_env.hpp"
#include "support/helpers.hpp"
#include "support/rpc_socket.hpp"
#include "support/streaming_child.hpp"

namespace thrum::test {
namespace {

namespace fs = std::filesystem;

/// A private directory for one test (registry, notify socket, policy), removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "thrum-ops-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// A datagram socket bound to `path`, as systemd's NOTIFY_SOCKET is.
class NotifyListener {
 public:
  explicit NotifyListener(const fs::path& path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("bind notify socket");
  }
  ~NotifyListener() { ::close(fd_); }
  /// The next datagram, or nullopt after `timeout`.
  std::optional<std::string> next(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }

 private:
  int fd_ = -1;
};

bool socket_answers(const fs::path& sock) {
  try {
    UnixRpcClient c(sock);
    auto r = c.call("health", json::object(), 2s);
    return r.contains("result") && r["result"].value("status", "") == "ok";
  } catch (const std::exception&) {
    return false;
  }
}

// -- `daemon run` logs to stderr ---------------------------------------------------------------

TEST(DaemonRun, LogsToStderrInTheLogFormatAndWritesNoLogFile) {
  TempRepo repo;
  StreamingChild d(THRUM_TEST_BINARY, {"daemon", "run"}, repo.root(),
                   {{"THRUM_LOG_LEVEL", "info"}});
  ASSERT_TRUE(wait_until([&] { return d.err().find("daemon ready") != std::string::npos; }, 20s))
      << d.err();
  d.kill(SIGTERM);
  auto res = d.wait(20s);
  EXPECT_EQ(res.exit_code, 0) << res.err;
  // The same `<UTC time> <level> <message key=value>` lines the log file has.
  EXPECT_TRUE(std::regex_search(
      res.err, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z info daemon ready socket=\S+)")))
      << res.err;
  EXPECT_NE(res.err.find("info daemon stopping signal=15"), std::string::npos) << res.err;
  EXPECT_FALSE(fs::exists(repo.var() / "daemon.log"))
      << "the foreground daemon logs to stderr only:\n"
      << slurp(repo.var() / "daemon.log");
}

TEST(DaemonStart, KeepsWritingTheLogFileAndStatusNamesIt) {
  TempRepo repo;
  repo.start_daemon();
  EXPECT_NE(slurp(repo.var() / "daemon.log").find(" info daemon ready socket="), std::string::npos)
      << slurp(repo.var() / "daemon.log");
  auto st = repo.thrum({"daemon", "status"});
  ASSERT_EQ(st.exit_code, 0) << st.out << st.err;
  EXPECT_NE(st.out.find("Log:        " + (repo.var() / "daemon.log").string()), std::string::npos)
      << st.out;
  EXPECT_NE(st.out.find("Policy:     "), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("Plugins:    "), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("local"), std::string::npos) << st.out;
}

TEST(DaemonStart, SighupReopensTheLogAfterItWasMovedAway) {
  TempRepo repo;
  repo.start_daemon();
  const fs::path log = repo.var() / "daemon.log";
  fs::rename(log, repo.var() / "daemon.log.rotated");
  ASSERT_EQ(::kill(repo.daemon_pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] {
    return slurp(log).find("daemon reload signal=SIGHUP") != std::string::npos;
  })) << "no reopened log at "
      << log;
  EXPECT_EQ(repo.thrum({"daemon", "status"}).exit_code, 0) << "SIGHUP must not stop the daemon";
}

// -- READY=1 on NOTIFY_SOCKET ------------------------------------------------------------------

TEST(DaemonRun, NotifiesReadyOnlyOnceTheSocketAnswersAndStoppingOnStop) {
  TempRepo repo;
  ScratchDir dir;
  NotifyListener notify(dir.path() / "notify.sock");
  StreamingChild d(THRUM_TEST_BINARY, {"daemon", "run"}, repo.root(),
                   {{"NOTIFY_SOCKET", (dir.path() / "notify.sock").string()}});
  auto ready = notify.next(20s);
  ASSERT_TRUE(ready.has_value()) << "no notification; daemon stderr:\n" << d.err();
  // Checked the instant READY arrives: the socket answers and ws.port exists.
  const bool answered = socket_answers(repo.var() / "thrum.sock");
  EXPECT_TRUE(answered) << "READY=1 came before the socket answered";
  EXPECT_TRUE(fs::exists(repo.var() / "ws.port"));
  EXPECT_NE(ready->find("READY=1"), std::string::npos) << *ready;
  EXPECT_NE(ready->find("MAINPID=" + std::to_string(d.pid())), std::string::npos) << *ready;

  d.kill(SIGTERM);
  auto stopping = notify.next(20s);
  ASSERT_TRUE(stopping.has_value());
  EXPECT_NE(stopping->find("STOPPING=1"), std::string::npos) << *stopping;
  EXPECT_EQ(d.wait(20s).exit_code, 0);
}

// -- daemon list -------------------------------------------------------------------------------

TEST(DaemonList, ShowsTwoRunningDaemonsAndDropsAKilledOne) {
  ScratchDir runtime;
  fs::permissions(runtime.path(), fs::perms::owner_all);
  const std::map<std::string, std::string> env{{"XDG_RUNTIME_DIR", runtime.path().string()}};
  TempRepo a("alpha"), b("beta");
  a.start_daemon(env);
  b.start_daemon(env);
  const fs::path reg = runtime.path() / "thrum" / "daemons";
  EXPECT_EQ(file_mode(reg), 0700);

  auto list = [&] {
    auto r = a.thrum({"daemon", "list", "--json"}, env);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return parse_json(r.out);
  };
  auto doc = list();
  ASSERT_TRUE(doc.contains("daemons")) << doc.dump(2);
  ASSERT_EQ(doc["daemons"].size(), 2u) << doc.dump(2);
  std::map<std::string, json> by_repo;
  for (const auto& d : doc["daemons"]) by_repo[d["repo_path"].get<std::string>()] = d;
  for (auto* r : {&a, &b}) {
    ASSERT_TRUE(by_repo.count(r->root().string())) << doc.dump(2);
    const json& d = by_repo[r->root().string()];
    EXPECT_EQ(d["pid"], r->daemon_pid());
    EXPECT_EQ(d["ws_port"], *read_ws_port(r->var()));
    EXPECT_TRUE(d["uptime_ms"].is_number_integer()) << d.dump();
    EXPECT_EQ(d["peers"]["total"], 0) << d.dump();
  }
  auto text = a.thrum({"daemon", "list"}, env);
  EXPECT_NE(text.out.find(b.root().string()), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(std::to_string(b.daemon_pid())), std::string::npos) << text.out;

  const int killed = b.daemon_pid();
  ASSERT_EQ(::kill(killed, SIGKILL), 0);
  ASSERT_TRUE(wait_until([&] { return !process_alive(killed); }));
  doc = list();
  ASSERT_EQ(doc["daemons"].size(), 1u) << doc.dump(2);
  EXPECT_EQ(doc["daemons"][0]["repo_path"], a.root().string());
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(reg)) files += e.path().extension() == ".json";
  EXPECT_EQ(files, 1u) << "the killed daemon's entry is deleted, not just hidden";

  a.stop_daemon();
  EXPECT_EQ(list()["daemons"].size(), 0u) << "a stopped daemon unregisters";
}

// -- the policy in force is recorded, and a start that changes it says so ----------------------

TEST(DaemonStart, WarnsWhenItsPolicyIsNotThePreviousDaemonsAndStatusShowsIt) {
  TempRepo repo;
  ScratchDir dir;
  // Canonical: the relative THRUM_POLICY below is made absolute against getcwd(), which
  // resolves symlinks (a symlinked TMPDIR).
  const fs::path a = fs::canonical(dir.path()) / "a.yaml";
  std::ofstream(a) << "transports:\n  local: { enabled: true }\n";
  const std::map<std::string, std::string> with_a{{"THRUM_POLICY", a.string()}};
  const std::string none =
      fs::exists("/etc/thrum/transports.yaml") ? "/etc/thrum/transports.yaml" : "no policy file";
  auto start = [&](const std::map<std::string, std::string>& env) {
    auto r = repo.thrum({"daemon", "start"}, env);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.err;
  };

  EXPECT_EQ(start(with_a), "") << "nothing recorded yet: nothing to warn about";
  EXPECT_EQ(file_mode(repo.var() / "policy.source"), 0600);
  auto st = repo.thrum({"daemon", "status"});
  EXPECT_NE(st.out.find("Policy:     " + a.string() + "\n"), std::string::npos) << st.out;
  EXPECT_EQ(parse_json(repo.thrum({"daemon", "status", "--json"}).out)["policy"], a.string());
  repo.stop_daemon();

  // Another shell, without THRUM_POLICY.
  const std::string warned = start({});
  EXPECT_NE(warned.find("policy: this start uses " + none), std::string::npos) << warned;
  EXPECT_NE(warned.find("the previous daemon used " + a.string() +
                        " (set THRUM_POLICY=" + a.string() + " to keep it)"),
            std::string::npos)
      << warned;
  EXPECT_EQ(std::count(warned.begin(), warned.end(), '\n'), 1) << "one line:\n" << warned;
  EXPECT_EQ(parse_json(repo.thrum({"daemon", "status", "--json"}).out)["policy"],
            none == "no policy file" ? "" : none);
  repo.stop_daemon();
  EXPECT_EQ(start({}), "") << "the same policy as last time: no warning";

  // restart checks too; a relative THRUM_POLICY is the same file as its absolute path.
  auto r = run_process(THRUM_TEST_BINARY, {"daemon", "restart", "--repo", repo.root().string()},
                       dir.path(), {{"THRUM_POLICY", "a.yaml"}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(
      r.err.find("policy: this start uses " + a.string() + "; the previous daemon used " + none),
      std::string::npos)
      << r.err;
  EXPECT_EQ(parse_json(repo.thrum({"daemon", "status", "--json"}).out)["policy"], a.string());
  r = repo.thrum({"daemon", "restart"}, with_a);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err, "");
}

// -- SIGHUP re-reads the operator policy -------------------------------------------------------

class PolicyReload : public MainAndApi {
 protected:
  void SetUp() override {
    write_policy(true);
    // Both daemons inherit it (run_process adds to this process's environment).
    ::setenv("THRUM_POLICY", (policy_.path() / "transports.yaml").c_str(), 1);
    MainAndApi::SetUp();
  }
  void TearDown() override {
    MainAndApi::TearDown();
    ::unsetenv("THRUM_POLICY");
  }
  void write_policy(bool local_enabled) {
    std::ofstream(policy_.path() / "transports.yaml")
        << "transports:\n  local: { enabled: " << (local_enabled ? "true" : "false") << " }\n";
  }
  void hangup() { ASSERT_EQ(::kill(main_.daemon_pid(), SIGHUP), 0); }
  json main_status() {
    auto r = main_.thrum({"daemon", "status", "--json"});
    return parse_json(r.out);
  }
  ScratchDir policy_;
};

TEST_F(PolicyReload, DisablesAndReEnablesATransportAndKeepsThePolicyOnError) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  const fs::path file = policy_.path() / "transports.yaml";
  EXPECT_EQ(main_status()["policy"], file.string());

  write_policy(false);
  hangup();
  ASSERT_TRUE(wait_peer_state(main_, "api", "disabled")) << peer_state(main_, "api");
  EXPECT_EQ(peer_record(main_, "api")["connected"], false);
  EXPECT_EQ(main_status()["plugins"], json::array()) << main_status().dump(2);
  // The other side sees the link go.
  EXPECT_TRUE(wait_until([&] {
    return peer_record(api_, "main").value("connected", true) == false;
  })) << peer_state(api_, "main");

  // A broken policy changes nothing and names file:line in the log.
  std::ofstream(file) << "transports:\n  local: [unclosed\n";
  hangup();
  ASSERT_TRUE(wait_until([&] {
    return main_.daemon_log().find("policy reload refused") != std::string::npos;
  })) << main_.daemon_log();
  EXPECT_TRUE(std::regex_search(main_.daemon_log(),
                                std::regex("policy reload refused.*" + file.string() + ":\\d+")))
      << main_.daemon_log();
  EXPECT_EQ(peer_record(main_, "api")["state"], "disabled");

  write_policy(true);
  hangup();
  ASSERT_TRUE(wait_peer_state(main_, "api", "connected", 30s)) << peer_state(main_, "api");
  EXPECT_EQ(main_status()["plugins"], json::array({"local"}));
  // And messages flow again.
  EXPECT_FALSE(send_to_reviewer("after the reload").empty());
  EXPECT_TRUE(wait_reviewer_total(1)) << peer_state(main_, "api");
}

}  // namespace
}  // namespace thrum::test
