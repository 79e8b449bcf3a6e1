// Durable `message.send` throughput: N persistent Unix-socket clients, one request outstanding
// each, against a real daemon (every acknowledged send is committed with synchronous=FULL).
//
//   thrum_bench_send [--total 5000] [--runs 3] [--clients 1,2,4,8,16]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "bench_common.hpp"

using namespace thrum::bench;

int main(int argc, char** argv) {
  int total = 5000, runs = 3;
  std::vector<int> client_counts = {1, 8};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--total"))
      total = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--runs"))
      runs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--clients")) {
      client_counts.clear();
      std::stringstream ss(argv[i + 1]);
      for (std::string x; std::getline(ss, x, ',');) client_counts.push_back(std::atoi(x.c_str()));
    }
  }
  std::printf("machine: %s\n", machine_description().c_str());
  std::printf("sends per run: %d, runs per client count: %d (fresh repo and daemon per run)\n\n",
              total, runs);
  std::printf("| clients | run | sends/s | p50 ms | p99 ms | max ms | commits | sends/commit |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (int clients : client_counts) {
    std::vector<double> rates;
    for (int run = 1; run <= runs; ++run) {
      BenchRepo repo;
      repo.register_agent("sink");
      for (int c = 0; c < clients; ++c) repo.register_agent("s" + std::to_string(c));
      send_burst(repo.sock(), clients, 200, "@sink", "warmup");  // page cache, prepared statements
      thrum::test::UnixRpcClient probe(repo.sock());
      auto before = probe.call("health")["result"]["store"];
      auto [secs, lat] = send_burst(repo.sock(), clients, total, "@sink", "bench");
      auto after = probe.call("health")["result"]["store"];
      const auto s = summarize(lat);
      const double commits = after.value("commits", 0.0) - before.value("commits", 0.0);
      const double rate = total / secs;
      rates.push_back(rate);
      std::printf("| %d | %d | %.0f | %.2f | %.2f | %.2f | %.0f | %.1f |\n", clients, run, rate,
                  s.median, s.p99, s.max, commits, commits > 0 ? total / commits : 0.0);
      std::fflush(stdout);
    }
    const auto r = summarize(rates);
    std::printf("| %d | median | **%.0f** | | | | | |\n", clients, r.median);
    std::fflush(stdout);
  }
  return 0;
}
