// Peer benchmarks (issue 4; docs/benchmarks-peers.md). Not a test: it measures and prints.
//
// Two throwaway repos, "main" and "api", each with its own real daemon (default timers, no
// THRUM_TIME_SCALE), paired over the local transport with the real CLI; main has the proxy
// api:reviewer. Three measurements:
//
//  1. latency: coordinator_main sends over one persistent Unix-socket connection (message.send
//     to @api:reviewer); a WebSocket client on api's ws://127.0.0.1:<ws.port>/ws waits for the
//     matching notification.message. One message in flight at a time; p50/p90/p99/max.
//  2. throughput: N sends from C persistent connections (one agent each, one request
//     outstanding each) as fast as they go, for each C in --clients; the clock stops when
//     reviewer has all N stored on api (durable: committed to api's SQLite store).
//  3. backlog drain: api stopped, N sends queue in main's outbox, api started; the rate at which
//     the link moves the backlog (first to last message committed on api).
//  4. idle memory: VmRSS of both daemons after start + agent registration, and again with the
//     peer link up and idle (after a settle period).
//
// Usage: thrum_bench_peers [--latency-samples N] [--throughput-messages N] [--clients C[,C...]]
//                          [--drain-messages N] [--idle-settle-ms MS] [--poll-ms MS]
// --latency-samples 0 skips the latency loops; --idle-settle-ms 0 skips the idle-memory waits;
// --drain-messages 0 skips the drain (only to iterate quickly; documented runs use defaults).
// --clients: sender connections per throughput run (default 8,16,32).
// --poll-ms N: poll main's queue for api every N ms to detect the end of a throughput run
// (default 2); 0 counts api's notification.message frames instead.
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_common.hpp"
#include "peers/peer_setup.hpp"
#include "support/helpers.hpp"
#include "support/process.hpp"
#include "support/rpc_socket.hpp"
#include "support/streaming_child.hpp"

namespace thrum::bench {
namespace {

long rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

/// Per thread name: CPU time (user + system, seconds) and how many times it was scheduled in
/// (/proc/<pid>/task/<tid>/schedstat, third field): a proxy for wake-ups and hand-offs.
struct ThreadUse {
  double cpu = 0;
  double runs = 0;
};
std::map<std::string, ThreadUse> thread_use(int pid) {
  std::map<std::string, ThreadUse> out;
  const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::error_code ec;
  for (const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(t.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::string name = stat.substr(open + 1, close - open - 1);
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i)
      if (i == 14 || i == 15) ticks += std::atof(field.c_str());  // utime, stime
    out[name].cpu += ticks / hz;
    std::ifstream ss(t.path() / "schedstat");
    double on_cpu_ns = 0, wait_ns = 0, runs = 0;
    if (ss >> on_cpu_ns >> wait_ns >> runs) out[name].runs += runs;
  }
  return out;
}

void print_use(const char* who, const std::map<std::string, ThreadUse>& before,
               const std::map<std::string, ThreadUse>& after, int messages) {
  double cpu = 0, runs = 0;
  std::string parts;
  for (const auto& [name, u] : after) {
    auto b = before.find(name);
    const ThreadUse d{u.cpu - (b == before.end() ? 0.0 : b->second.cpu),
                      u.runs - (b == before.end() ? 0.0 : b->second.runs)};
    cpu += d.cpu;
    runs += d.runs;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s%s %.0f us / %.2f", parts.empty() ? "" : ", ", name.c_str(),
                  d.cpu * 1e6 / messages, d.runs / messages);
    parts += buf;
  }
  std::printf("per message, %s: CPU %.0f us, scheduled %.2f times (%s)\n", who,
              cpu * 1e6 / messages, runs / messages, parts.c_str());
}

double self_cpu() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int64_t store_commits(test::UnixRpcClient& c) {
  auto r = c.call("health", json::object());
  if (!r.contains("result")) throw std::runtime_error("health failed: " + r.dump());
  return r["result"]["store"].value("commits", int64_t{-1});
}

int64_t store_unsynced(test::UnixRpcClient& c) {
  auto r = c.call("health", json::object());
  if (!r.contains("result")) throw std::runtime_error("health failed: " + r.dump());
  return r["result"]["store"].value("unsynced_commits", int64_t{0});
}

/// "8,16,32" -> {8, 16, 32}; every count must be a positive number.
std::vector<int> parse_counts(const std::string& list) {
  std::vector<int> out;
  std::stringstream in(list);
  for (std::string part; std::getline(in, part, ',');) {
    const int n = std::atoi(part.c_str());
    if (n < 1) throw std::invalid_argument("--clients takes positive counts, e.g. 8,16,32");
    out.push_back(n);
  }
  if (out.empty()) throw std::invalid_argument("--clients takes positive counts, e.g. 8,16,32");
  return out;
}

void print_summary(const char* label, const Summary& s) {
  std::printf("%-34s p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  mean %.3f ms\n", label,
              s.median, s.p90, s.p99, s.max, s.mean);
}

/// How the end of a run is detected: main's queue for api is empty once every send has
/// returned. api acknowledges a frame only after committing it (fsync), so an empty queue
/// means all of them are durable on api; the ack's own trip back adds well under a
/// millisecond to the measured time. Polling that count is O(queue), small while the link
/// keeps up. (Polling api's inbox total instead, as this benchmark first did, is O(inbox):
/// with 60,000 stored messages each poll took api's I/O thread 12 ms, which then showed up
/// as receiver cost.) `poll_ms` == 0: count api's notification.message frames instead.
struct Completion {
  size_t polls = 0;
  double poll_mean_ms = 0;
};

Completion wait_acked(test::UnixRpcClient& main_client, const std::atomic<bool>& sending_done,
                      int poll_ms, std::chrono::steady_clock::time_point deadline) {
  Completion c;
  std::vector<double> taken;
  for (;;) {
    const bool sent = sending_done.load();
    const auto p0 = steady::now();
    const int64_t queued = queued_for_api(main_client);
    taken.push_back(std::chrono::duration<double, std::milli>(steady::now() - p0).count());
    if ((sent && queued == 0) || steady::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  c.polls = taken.size();
  c.poll_mean_ms = summarize(taken).mean;
  return c;
}

/// `messages` sends from `clients` connections (agents s0..), each with one request
/// outstanding, to @api:reviewer; the clock stops when api has all of them committed.
void throughput_run(NamedRepo& main_repo, NamedRepo& api, int clients, int messages, int poll_ms,
                    const std::string& tag) {
  using namespace std::chrono_literals;
  test::UnixRpcClient counter(api.sock());
  const int64_t base = total_for(counter, "reviewer");
  test::UnixRpcClient main_health(main_repo.sock());
  const auto commits_before = std::make_pair(store_commits(main_health), store_commits(counter));
  const int64_t main_unsynced_before = store_unsynced(main_health);
  const auto use_main_before = thread_use(main_repo.pid()), use_api_before = thread_use(api.pid());
  const double bench_cpu_before = self_cpu();
  const bool by_poll = poll_ms > 0;
  std::unique_ptr<test::WsRpcClient> notify_ws;
  if (!by_poll) {
    auto port = test::read_ws_port(api.var());
    if (!port) throw std::runtime_error("no ws.port for api");
    notify_ws = std::make_unique<test::WsRpcClient>(*port, test::ws_auth(api.var(), "reviewer"));
    if (!notify_ws->call("health").contains("result")) throw std::runtime_error("ws failed");
  }
  std::printf("-- throughput, %d sender connections, %d messages\n", clients, messages);
  std::atomic<bool> sending_done{false};
  const auto start = steady::now();
  std::thread senders([&] {
    auto res = send_burst(main_repo.sock(), clients, messages, "@api:reviewer", tag);
    std::printf(
        "throughput sender side: %d sends in %.3f s = %.0f msgs/s (send p50 %.3f ms, p99 %.3f "
        "ms)\n",
        messages, res.first, messages / res.first, summarize(res.second).median,
        summarize(res.second).p99);
    sending_done = true;
  });
  const auto deadline = start + 300s;
  Completion done;
  int64_t duplicates = 0, seen_count = 0;
  if (by_poll) {
    done = wait_acked(main_health, sending_done, poll_ms, deadline);
  } else {
    // api announces each message on /ws after its commit; count this run's ones.
    std::unordered_set<std::string> seen;
    const std::string prefix = tag + " ";
    while (static_cast<int64_t>(seen.size()) < messages && steady::now() < deadline) {
      auto n = notify_ws->next_notification("notification.message", 10s);
      if (!n) break;
      const std::string preview = (*n)["params"].value("preview", "");
      if (preview.rfind(prefix, 0) == 0 && !seen.insert(preview).second) ++duplicates;
    }
    seen_count = static_cast<int64_t>(seen.size());
  }
  const double secs = std::chrono::duration<double>(steady::now() - start).count();
  senders.join();
  // The store agrees: exactly this many more are committed for reviewer (none twice).
  const int64_t stored = total_for(counter, "reviewer") - base;
  if (stored != messages || duplicates != 0)
    throw std::runtime_error("seen " + std::to_string(seen_count) + " (" +
                             std::to_string(duplicates) + " twice), stored " +
                             std::to_string(stored) + " of " + std::to_string(messages));
  std::printf(
      "throughput end to end: %d msgs stored on the remote in %.3f s = %.0f msgs/s (%d sender "
      "connections)\n",
      messages, secs, messages / secs, clients);
  const auto commits_after = std::make_pair(store_commits(main_health), store_commits(counter));
  print_use("main (sender)", use_main_before, thread_use(main_repo.pid()), messages);
  print_use("api (receiver)", use_api_before, thread_use(api.pid()), messages);
  std::printf("per message, this benchmark's clients and poller: CPU %.0f us\n",
              (self_cpu() - bench_cpu_before) * 1e6 / messages);
  std::printf("store commits during the run: main %lld, api %lld (%.1f and %.1f msgs/commit)\n",
              static_cast<long long>(commits_after.first - commits_before.first),
              static_cast<long long>(commits_after.second - commits_before.second),
              messages / std::max(1.0, double(commits_after.first - commits_before.first)),
              messages / std::max(1.0, double(commits_after.second - commits_before.second)));
  std::printf("  of which without fsync (deferred jobs only): main %lld\n",
              static_cast<long long>(store_unsynced(main_health) - main_unsynced_before));
  if (by_poll)
    std::printf(
        "completion polls on main (peer.list queue every %d ms): %zu, round trip mean %.3f ms\n",
        poll_ms, done.polls, done.poll_mean_ms);
  else
    std::printf("completion: api's notification.message stream (all %d seen once)\n", messages);
  std::fflush(stdout);
}

/// The link alone: api is stopped, `messages` sends queue in main's outbox, api starts again;
/// the clock runs from the first acknowledged frame to the empty queue (polled every 2 ms).
void drain_run(NamedRepo& main_repo, NamedRepo& api, int messages, int clients) {
  using namespace std::chrono_literals;
  std::printf("-- backlog drain, %d messages queued while api was down\n", messages);
  int64_t base = 0;
  {
    test::UnixRpcClient counter(api.sock());
    base = total_for(counter, "reviewer");
  }
  api.must({"daemon", "stop"});
  auto res = send_burst(main_repo.sock(), clients, messages, "@api:reviewer", "drain");
  std::printf("queued while down: %d sends in %.3f s = %.0f msgs/s (%d connections)\n", messages,
              res.first, messages / res.first, clients);
  test::UnixRpcClient main_client(main_repo.sock());
  const int64_t queued = queued_for_api(main_client);
  if (queued < messages)
    throw std::runtime_error("drain: only " + std::to_string(queued) +
                             " queued while api was down");
  api.must({"daemon", "start"});
  const auto deadline = steady::now() + 300s;
  // Wait for the first acknowledged frame, then time the rest.
  int64_t left = queued;
  while ((left = queued_for_api(main_client)) == queued && steady::now() < deadline)
    std::this_thread::sleep_for(1ms);
  const auto first = steady::now();
  const auto use_main_before = thread_use(main_repo.pid()), use_api_before = thread_use(api.pid());
  std::atomic<bool> all_sent{true};
  auto done = wait_acked(main_client, all_sent, 2, deadline);
  const double secs = std::chrono::duration<double>(steady::now() - first).count();
  test::UnixRpcClient counter(api.sock());
  const int64_t stored = total_for(counter, "reviewer") - base;
  if (stored != messages)
    throw std::runtime_error("drain: stored " + std::to_string(stored) + " of " +
                             std::to_string(messages));
  const int moved = static_cast<int>(left);
  std::printf(
      "drained: %d msgs acknowledged by api in %.3f s after the first frame = %.0f msgs/s "
      "(%zu polls)\n",
      moved, secs, moved / secs, done.polls);
  print_use("main (sender)", use_main_before, thread_use(main_repo.pid()), moved);
  print_use("api (receiver)", use_api_before, thread_use(api.pid()), moved);
  std::fflush(stdout);
}

}  // namespace
}  // namespace thrum::bench

int main(int argc, char** argv) {
  using namespace thrum::bench;
  using namespace std::chrono_literals;
  int samples = 2000, messages = 20000, settle_ms = 12000, poll_ms = 2, drain_messages = 20000;
  std::vector<int> clients{8, 16, 32};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--latency-samples")) samples = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--throughput-messages")) messages = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--clients")) {
      try {
        clients = parse_counts(argv[i + 1]);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 2;
      }
    }
    if (!std::strcmp(argv[i], "--drain-messages")) drain_messages = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--idle-settle-ms")) settle_ms = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--poll-ms")) poll_ms = std::atoi(argv[i + 1]);
  }
  try {
    std::printf("machine: %s\n", machine_description().c_str());
    NamedRepo main_repo("main"), api("api");
    main_repo.must({"quickstart", "--name", "coordinator_main", "--role", "coordinator"},
                   {{"THRUM_NAME", "coordinator_main"}});
    api.must({"quickstart", "--name", "reviewer", "--role", "reviewer"},
             {{"THRUM_NAME", "reviewer"}});
    const int most = *std::max_element(clients.begin(), clients.end());
    for (int c = 0; c < most; ++c)
      main_repo.must({"quickstart", "--name", "s" + std::to_string(c), "--role", "bench"},
                     {{"THRUM_NAME", "s" + std::to_string(c)}});

    std::printf("daemons: main pid %d, api pid %d\n", main_repo.pid(), api.pid());
    std::fflush(stdout);
    // -- idle memory, before pairing
    if (settle_ms > 0) std::this_thread::sleep_for(2s);
    const long main_before = rss_kib(main_repo.pid()), api_before = rss_kib(api.pid());

    pair(api, main_repo);
    main_repo.must({"peer", "configure", "api", "add-agent", "reviewer"});
    if (!thrum::test::wait_until([&] { return peer_state(main_repo, "api") == "connected"; }, 20s))
      throw std::runtime_error("link did not come up");

    // -- idle memory, with an idle link (past a ping or two)
    std::this_thread::sleep_for(std::chrono::milliseconds(settle_ms));
    const long main_idle = rss_kib(main_repo.pid()), api_idle = rss_kib(api.pid());
    std::printf("idle RSS before pairing:  main %ld KiB, api %ld KiB\n", main_before, api_before);
    std::printf("idle RSS with idle link:  main %ld KiB (%+ld), api %ld KiB (%+ld)\n", main_idle,
                main_idle - main_before, api_idle, api_idle - api_before);

    // -- latency: send -> remote notification.message
    auto port = thrum::test::read_ws_port(api.var());
    if (!port) throw std::runtime_error("no ws.port for api");
    thrum::test::WsRpcClient ws(*port, thrum::test::ws_auth(api.var(), "reviewer"));
    if (!ws.call("health").contains("result")) throw std::runtime_error("ws health failed");
    thrum::test::UnixRpcClient sender(main_repo.sock());
    // Baseline on one daemon: the same send to a local agent, notification on main's own /ws.
    auto main_port = thrum::test::read_ws_port(main_repo.var());
    if (!main_port) throw std::runtime_error("no ws.port for main");
    const int warmup = 100;
    auto measure = [&](thrum::test::WsRpcClient& client, const std::string& to, const char* label) {
      std::vector<double> lat, send_ret;
      for (int i = 0; i < warmup + samples; ++i) {
        const std::string body = std::string(label) + " " + std::to_string(i);
        const auto t0 = steady::now();
        auto r = sender.call("message.send", {{"caller_agent_id", "coordinator_main"},
                                              {"to", json::array({to})},
                                              {"content", body}});
        const auto ts = steady::now();
        if (!r.contains("result")) throw std::runtime_error("send failed: " + r.dump());
        bool got = false;
        while (!got) {
          auto n = client.next_notification("notification.message", 10s);
          if (!n)
            throw std::runtime_error("no notification.message within 10 s for sample " +
                                     std::to_string(i));
          got = (*n)["params"].value("preview", "") == body;
        }
        const auto t1 = steady::now();
        if (i >= warmup) {
          lat.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
          send_ret.push_back(std::chrono::duration<double, std::milli>(ts - t0).count());
        }
      }
      print_summary(
          (std::string(label) + " send->notify (n=" + std::to_string(samples) + ")").c_str(),
          summarize(lat));
      print_summary((std::string(label) + " message.send returns").c_str(), summarize(send_ret));
    };
    if (samples > 0) {
      thrum::test::WsRpcClient local_ws(*main_port, thrum::test::ws_auth(main_repo.var(), "s0"));
      if (!local_ws.call("health").contains("result")) throw std::runtime_error("ws health failed");
      measure(local_ws, "@s0", "local (one daemon)");
      measure(ws, "@api:reviewer", "cross-peer");
    }

    // -- sustained durable throughput over the link, for each sender count
    for (int c : clients)
      throughput_run(main_repo, api, c, messages, poll_ms, "tp" + std::to_string(c));

    // -- backlog drain: what the link alone moves once a queue has built up
    if (drain_messages > 0)
      drain_run(main_repo, api, drain_messages, *std::max_element(clients.begin(), clients.end()));

    const long main_after = rss_kib(main_repo.pid()), api_after = rss_kib(api.pid());
    std::printf("RSS after all runs:       main %ld KiB, api %ld KiB\n", main_after, api_after);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
