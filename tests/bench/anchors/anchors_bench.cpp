// Thrum against its anchors, in the same run (issue 16; docs/benchmarks.md). Not a test: it
// measures and prints ratios with the load average, so a number is only ever compared with an
// anchor measured in the same minute on the same machine.
//
// Anchors:
//  - the floor pipeline (thrum_floor_pipeline): client -> A fdatasync -> TCP -> B fdatasync ->
//    TCP push, three processes in C++;
//  - Redis (redis-server from Debian, started and stopped here on loopback, AOF with
//    appendfsync always): XADD -> XREAD for latency, 32 clients XADD for throughput.
// Thrum: two real daemons paired over the local transport; message.send to @api:reviewer,
// latency to api's notification.message on /ws, throughput until main's queue for api is empty
// (api acknowledges only what it has committed).
//
// Modes:
//   (default)      --rounds R (3) of: floor, Redis and Thrum latency (--samples N, 1000 each),
//                  then Redis and Thrum throughput (--messages M, 20000; --clients C, 32).
//   --io           /proc/PID/io of each daemon (and of Redis) around --messages M sends from one
//                  sender, one at a time: bytes written per message (wchar: what the process
//                  wrote; write_bytes: what reached the block device), context switches.
//   --callgrind    both daemons restarted under valgrind --tool=callgrind; counters zeroed after a
//                  warm-up, --messages M (300) sends, dumped: instructions per message per daemon.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "anchors/resp_client.hpp"
#include "bench_common.hpp"
#include "peers/peer_setup.hpp"

namespace thrum::bench {
namespace {

using namespace std::chrono_literals;

pid_t spawn(const std::vector<std::string>& args, const std::string& out_file = "/dev/null",
            const std::vector<std::string>& extra_env = {}) {
  std::vector<std::string> a = args;
  std::vector<char*> argv = c_strings(a);
  std::vector<std::string> env = environment_with(extra_env);
  std::vector<char*> envp = c_strings(env);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  // posix_spawnp: redis-server and valgrind are looked up on PATH.
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot run " + args[0] + ": " + std::strerror(rc));
  return pid;
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// redis-server on loopback with AOF, appendfsync always, in its own temp dir; stopped (and the
/// dir removed) on destruction.
class Redis {
 public:
  Redis() {
    std::string tmpl = (fs::temp_directory_path() / "thrum-bench-redis-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    port_ = free_port();
    pid_ = spawn({"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                  "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--dir",
                  dir_.string(), "--daemonize", "no", "--protected-mode", "no"},
                 (dir_ / "redis.log").string());
    for (int i = 0; i < 500; ++i) {
      try {
        RespClient c(port_);
        if (c.call({"PING"}).str == "PONG") return;
      } catch (const std::exception&) {
      }
      std::this_thread::sleep_for(10ms);
    }
    throw std::runtime_error(
        "redis-server did not answer PING (is it installed? "
        "scripts/install-deps.sh --bench)");
  }
  ~Redis() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }

 private:
  fs::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

const std::string kBody(100, 'x');  // every system moves the same 100-byte payload

// -- the floor --------------------------------------------------------------------------------

double floor_p50(int samples) {
  const std::string exe = (fs::path(THRUM_BENCH_DIR) / "thrum_floor_pipeline").string();
  const fs::path out = fs::temp_directory_path() / ("thrum-floor-" + std::to_string(::getpid()));
  pid_t pid = spawn({exe, "--samples", std::to_string(samples), "--dir", "/var/tmp"}, out.string());
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::ifstream in(out);
  std::string word, value;
  double p50 = -1;
  while (in >> word)
    if (word == "p50_ms" && in >> value) p50 = std::atof(value.c_str());
  fs::remove(out);
  if (p50 < 0) throw std::runtime_error("floor pipeline printed no p50");
  return p50;
}

// -- Redis ------------------------------------------------------------------------------------

double redis_latency_p50(const Redis& r, int samples) {
  RespClient writer(r.port()), reader(r.port());
  const std::string stream = "lat" + std::to_string(::getpid());
  std::string last = writer.call({"XADD", stream, "*", "b", kBody}).str;
  std::vector<double> lat;
  for (int i = 0; i < 100 + samples; ++i) {
    // XREAD from the last id: returns at once if the XADD landed first, so there is no race.
    reader.send({"XREAD", "BLOCK", "0", "STREAMS", stream, last});
    const auto t0 = steady::now();
    last = writer.call({"XADD", stream, "*", "b", kBody}).str;
    auto got = reader.read();
    const auto t1 = steady::now();
    if (got.items.empty()) throw std::runtime_error("XREAD returned nothing");
    if (i >= 100) lat.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  writer.call({"DEL", stream});
  return summarize(lat).median;
}

double redis_throughput(const Redis& r, int clients, int messages) {
  const std::string stream = "tp" + std::to_string(::getpid());
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (int c = 0; c < clients; ++c)
    ts.emplace_back([&, c] {
      RespClient conn(r.port());
      const int n = messages / clients + (c < messages % clients ? 1 : 0);
      ++ready;
      while (!go) std::this_thread::yield();
      for (int i = 0; i < n; ++i) conn.call({"XADD", stream, "*", "b", kBody});
    });
  while (ready < clients) std::this_thread::yield();
  const auto t0 = steady::now();
  go = true;
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(steady::now() - t0).count();
  RespClient(r.port()).call({"DEL", stream});
  return messages / secs;
}

// -- Thrum ------------------------------------------------------------------------------------

struct Pair {
  NamedRepo main_repo{"main"};
  NamedRepo api{"api"};
  int clients = 0;
  Pair(int sender_agents) : clients(sender_agents) {
    main_repo.must({"quickstart", "--name", "coordinator_main", "--role", "coordinator"},
                   {{"THRUM_NAME", "coordinator_main"}});
    api.must({"quickstart", "--name", "reviewer", "--role", "reviewer"},
             {{"THRUM_NAME", "reviewer"}});
    for (int c = 0; c < sender_agents; ++c)
      main_repo.must({"quickstart", "--name", "s" + std::to_string(c), "--role", "bench"},
                     {{"THRUM_NAME", "s" + std::to_string(c)}});
    pair(api, main_repo);
    main_repo.must({"peer", "configure", "api", "add-agent", "reviewer"});
    wait_connected(20s);
  }
  void wait_connected(std::chrono::seconds limit) const {
    if (!test::wait_until([&] { return peer_state(main_repo, "api") == "connected"; }, limit))
      throw std::runtime_error("link did not come up");
  }
};

/// p50 of message.send -> api's notification.message, one in flight.
double thrum_latency_p50(Pair& p, int samples) {
  auto port = test::read_ws_port(p.api.var());
  if (!port) throw std::runtime_error("no ws.port for api");
  test::WsRpcClient ws(*port, test::ws_auth(p.api.var(), "reviewer"));
  if (!ws.call("health").contains("result")) throw std::runtime_error("ws health failed");
  test::UnixRpcClient sender(p.main_repo.sock());
  std::vector<double> lat;
  for (int i = 0; i < 100 + samples; ++i) {
    const std::string body = "anchor " + std::to_string(i) + " " + kBody;
    const auto t0 = steady::now();
    auto r = sender.call("message.send", {{"caller_agent_id", "coordinator_main"},
                                          {"to", json::array({"@api:reviewer"})},
                                          {"content", body}});
    if (!r.contains("result")) throw std::runtime_error("send failed: " + r.dump());
    for (;;) {
      auto n = ws.next_notification("notification.message", 10s);
      if (!n) throw std::runtime_error("no notification.message within 10 s");
      // The preview may be cut short; its start names the sample.
      if ((*n)["params"].value("preview", "").rfind("anchor " + std::to_string(i) + " ", 0) == 0)
        break;
    }
    const auto t1 = steady::now();
    if (i >= 100) lat.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return summarize(lat).median;
}

void wait_drained(Pair& p) {
  test::UnixRpcClient c(p.main_repo.sock());
  const auto deadline = steady::now() + 300s;
  while (queued_for_api(c) != 0) {
    if (steady::now() > deadline) throw std::runtime_error("queue for api never drained");
    std::this_thread::sleep_for(2ms);
  }
}

/// Durable msgs/s end to end: sends from `clients` connections until api has acknowledged all.
double thrum_throughput(Pair& p, int clients, int messages, const std::string& tag) {
  const auto t0 = steady::now();
  send_burst(p.main_repo.sock(), clients, messages, "@api:reviewer", tag);
  wait_drained(p);
  return messages / std::chrono::duration<double>(steady::now() - t0).count();
}

// -- /proc/PID/io -----------------------------------------------------------------------------

struct Io {
  double wchar = 0, write_bytes = 0, ctx = 0;
};
Io read_io(int pid) {
  Io io;
  std::ifstream in("/proc/" + std::to_string(pid) + "/io");
  for (std::string k; in >> k;) {
    double v = 0;
    in >> v;
    if (k == "wchar:") io.wchar = v;
    if (k == "write_bytes:") io.write_bytes = v;
  }
  std::error_code ec;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream st(t.path() / "status");
    for (std::string line; std::getline(st, line);)
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 ||
          line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
        io.ctx += std::atof(line.c_str() + line.find(':') + 1);
  }
  return io;
}
void print_io(const char* who, const Io& a, const Io& b, int messages) {
  const double w = (b.wchar - a.wchar) / messages, d = (b.write_bytes - a.write_bytes) / messages;
  std::printf(
      "io %-16s wchar %8.0f B/msg (%.2f pages of 4 KiB)  block device %8.0f B/msg  context "
      "switches %.2f/msg\n",
      who, w, w / 4096, d, (b.ctx - a.ctx) / messages);
}

/// The repo's store counters since it opened (health.store): wal_bytes, commits, ...
json store_stats(NamedRepo& r) {
  test::UnixRpcClient c(r.sock());
  auto h = c.call("health", json::object());
  if (!h.contains("result")) throw std::runtime_error("health failed: " + h.dump());
  return h["result"]["store"];
}

void sequential_sends(Pair& p, int messages, const std::string& tag) {
  test::UnixRpcClient sender(p.main_repo.sock());
  for (int i = 0; i < messages; ++i) {
    auto r = sender.call("message.send", {{"caller_agent_id", "coordinator_main"},
                                          {"to", json::array({"@api:reviewer"})},
                                          {"content", tag + std::to_string(i) + " " + kBody}});
    if (!r.contains("result")) throw std::runtime_error("send failed: " + r.dump());
  }
  wait_drained(p);
}

int run_io(int messages) {
  Pair p(1);
  Redis redis;
  sequential_sends(p, 200, "warm ");  // past schema creation and first-use allocations
  const int mp = p.main_repo.pid(), ap = p.api.pid();
  std::this_thread::sleep_for(200ms);
  const Io m0 = read_io(mp), a0 = read_io(ap);
  const json ms0 = store_stats(p.main_repo), as0 = store_stats(p.api);
  sequential_sends(p, messages, "io ");
  std::this_thread::sleep_for(200ms);
  const Io m1 = read_io(mp), a1 = read_io(ap);
  const json ms1 = store_stats(p.main_repo), as1 = store_stats(p.api);
  std::printf("load average %s; %d messages of %zu bytes from one sender, one at a time\n",
              loadavg().c_str(), messages, kBody.size());
  print_io("thrum sender", m0, m1, messages);
  print_io("thrum receiver", a0, a1, messages);
  // What the store appended to its WAL (the daemons' own count, health.store.wal_bytes;
  // wchar above also counts socket writes and checkpoints into thrum.db), and its commits.
  auto per_msg = [&](const json& a, const json& b, const char* k) {
    return (b.value(k, 0.0) - a.value(k, 0.0)) / messages;
  };
  for (auto [who, a, b] : {std::tuple{"sender", &ms0, &ms1}, std::tuple{"receiver", &as0, &as1}}) {
    const double w = per_msg(*a, *b, "wal_bytes");
    std::printf(
        "wal thrum %-9s %8.0f B/msg (%.2f pages of 4 KiB); commits %.2f/msg (unsynced %.2f), "
        "jobs %.2f/msg\n",
        who, w, w / 4096, per_msg(*a, *b, "commits"), per_msg(*a, *b, "unsynced_commits"),
        per_msg(*a, *b, "writes"));
  }
  RespClient c(redis.port());
  const Io r0 = read_io(redis.pid());
  for (int i = 0; i < messages; ++i) c.call({"XADD", "io", "*", "b", kBody});
  const Io r1 = read_io(redis.pid());
  print_io("redis (AOF always)", r0, r1, messages);
  return 0;
}

// -- callgrind --------------------------------------------------------------------------------

/// Stops the repo's daemon and runs it again under callgrind; returns the valgrind pid.
pid_t restart_under_callgrind(NamedRepo& r, const fs::path& out_dir, const char* who) {
  auto port = test::read_ws_port(r.var());
  r.must({"daemon", "stop"});
  std::vector<std::string> env;
  if (port) env.push_back("THRUM_WS_PORT=" + std::to_string(*port));
  pid_t pid = spawn({"valgrind", "--tool=callgrind", "--trace-children=yes",
                     "--callgrind-out-file=" + (out_dir / (std::string(who) + ".%p")).string(),
                     THRUM_TEST_BINARY, "daemon", "run", "--repo", r.root().string()},
                    (out_dir / (std::string(who) + ".log")).string(), env);
  if (!test::wait_until([&] { return fs::exists(r.sock()) && r.pid() == pid; }, 120s))
    throw std::runtime_error(std::string(who) + " did not come up under callgrind");
  return pid;
}

/// Sum of the "summary:" Ir over the dumps named <prefix>.<n> in `dir` (prefix: who.pid).
double dumped_instructions(const fs::path& dir, const std::string& prefix) {
  double total = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix + ".", 0) != 0) continue;  // the dumps, not the file written at exit
    std::ifstream in(e.path());
    for (std::string line; std::getline(in, line);)
      if (line.rfind("summary:", 0) == 0 || line.rfind("totals:", 0) == 0) {
        total += std::atof(line.c_str() + line.find(':') + 1);
        break;
      }
  }
  return total;
}

int run_callgrind(int messages) {
  Pair p(1);
  std::string tmpl = (fs::temp_directory_path() / "thrum-bench-cg-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  const fs::path dir = tmpl;
  const pid_t mp = restart_under_callgrind(p.main_repo, dir, "main");
  const pid_t ap = restart_under_callgrind(p.api, dir, "api");
  p.wait_connected(120s);
  sequential_sends(p, 50, "warm ");
  auto control = [&](const char* flag, pid_t pid) {
    pid_t c = spawn({"callgrind_control", flag, std::to_string(pid)});
    ::waitpid(c, nullptr, 0);
  };
  control("-z", mp);
  control("-z", ap);
  sequential_sends(p, messages, "cg ");
  control("-d", mp);
  control("-d", ap);
  const double main_ir = dumped_instructions(dir, "main." + std::to_string(mp));
  const double api_ir = dumped_instructions(dir, "api." + std::to_string(ap));
  std::printf("callgrind, %d messages from one sender, one at a time (load average %s)\n", messages,
              loadavg().c_str());
  std::printf("instructions per message: sender %.0f, receiver %.0f, total %.0f\n",
              main_ir / messages, api_ir / messages, (main_ir + api_ir) / messages);
  p.main_repo.must({"daemon", "stop"});
  p.api.must({"daemon", "stop"});
  ::waitpid(mp, nullptr, 0);
  ::waitpid(ap, nullptr, 0);
  std::error_code ec;
  if (!::getenv("THRUM_BENCH_KEEP")) fs::remove_all(dir, ec);
  return 0;
}

// -- interleaved ratios -----------------------------------------------------------------------

int run_ratios(int rounds, int samples, int messages, int clients) {
  Pair p(clients);
  Redis redis;
  std::printf("machine: %s\n", machine_description().c_str());
  std::vector<double> lat_ratio, lat_redis_ratio, tp, tp_ratio;
  for (int r = 1; r <= rounds; ++r) {
    const double fl = floor_p50(samples);
    const double rl = redis_latency_p50(redis, samples);
    const double tl = thrum_latency_p50(p, samples);
    const double rt = redis_throughput(redis, clients, messages);
    const double tt = thrum_throughput(p, clients, messages, "r" + std::to_string(r));
    std::printf(
        "round %d (load %s): send->notify p50 thrum %.3f ms, floor %.3f ms (%.2fx), redis "
        "XADD->XREAD %.3f ms (%.2fx); durable msgs/s, %d senders: thrum %.0f, redis %.0f "
        "(%.2fx)\n",
        r, loadavg().c_str(), tl, fl, tl / fl, rl, tl / rl, clients, tt, rt, tt / rt);
    std::fflush(stdout);
    lat_ratio.push_back(tl / fl);
    lat_redis_ratio.push_back(tl / rl);
    tp.push_back(tt);
    tp_ratio.push_back(tt / rt);
  }
  std::printf(
      "median of %d rounds: send->notify / floor %.2fx, / redis %.2fx; thrum %.0f msgs/s = "
      "%.2fx redis (load %s)\n",
      rounds, summarize(lat_ratio).median, summarize(lat_redis_ratio).median, summarize(tp).median,
      summarize(tp_ratio).median, loadavg().c_str());
  return 0;
}

}  // namespace
}  // namespace thrum::bench

int main(int argc, char** argv) {
  using namespace thrum::bench;
  int rounds = 3, samples = 1000, messages = -1, clients = 32;
  bool io = false, callgrind = false;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--io"))
      io = true;
    else if (!std::strcmp(argv[i], "--callgrind"))
      callgrind = true;
    else if (!std::strcmp(argv[i], "--rounds") && has_value)
      rounds = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--samples") && has_value)
      samples = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--messages") && has_value)
      messages = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--clients") && has_value)
      clients = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr,
                   "usage: thrum_bench_anchors [--rounds R] [--samples N] [--messages M] "
                   "[--clients C] | --io [--messages M] | --callgrind [--messages M]\n");
      return 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  try {
    if (io) return run_io(messages > 0 ? messages : 2000);
    if (callgrind) return run_callgrind(messages > 0 ? messages : 300);
    return run_ratios(rounds, samples, messages > 0 ? messages : 20000, clients);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench failed: %s\n", e.what());
    return 1;
  }
}
