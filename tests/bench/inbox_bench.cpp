// `thrum inbox` wall time on a 1,000-message inbox: the real CLI binary, spawned and waited for,
// stdout to /dev/null, default --limit (20). The first run marks the 20 shown messages read (one
// durable write); later runs find them read and only read.
//
//   thrum_bench_inbox [--runs 50] [--messages 1000]
//
// With --big N (issue 16): a second agent gets an N-message inbox in the same daemon, and
// `thrum inbox` runs alternate between the small and the big one, back to back; it prints both
// medians and their ratio with the load average (nothing an inbox shows may grow with it).
//   thrum_bench_inbox --big 100000 [--messages 1000] [--runs 50]

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "bench_common.hpp"

using namespace thrum::bench;

namespace {

double time_cli(const fs::path& cwd, const std::string& name, std::vector<std::string> args) {
  return time_program(THRUM_TEST_BINARY, cwd, std::move(args), name);
}

void report(const char* what, const std::vector<double>& v) {
  const auto s = summarize(v);
  std::printf("| %s | %zu | %.2f | **%.2f** | **%.2f** | %.2f | %.2f |\n", what, v.size(), s.min,
              s.median, s.p90, s.max, s.mean);
  std::fflush(stdout);
}

int small_vs_big(int runs, int small, int big) {
  std::printf("machine: %s\n", machine_description().c_str());
  BenchRepo repo;
  repo.register_agent("small");
  repo.register_agent("big");
  for (int c = 0; c < 4; ++c) repo.register_agent("s" + std::to_string(c));
  send_burst(repo.sock(), 4, small, "@small", "inbox bench message with a realistic-ish body");
  send_burst(repo.sock(), 4, big, "@big", "inbox bench message with a realistic-ish body");
  std::printf("inboxes: @small %d messages, @big %d; %d runs each, alternating\n\n", small, big,
              runs);
  std::printf("| command | runs | min ms | median ms | p90 ms | max ms | mean ms |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  const std::string load_before = loadavg();
  std::vector<double> vs, vb;
  for (int i = 0; i < runs; ++i) {
    vs.push_back(time_cli(repo.root(), "small", {"inbox"}));
    vb.push_back(time_cli(repo.root(), "big", {"inbox"}));
  }
  const std::string s_label = "`thrum inbox` at " + std::to_string(small);
  const std::string b_label = "`thrum inbox` at " + std::to_string(big);
  report(s_label.c_str(), vs);
  report(b_label.c_str(), vb);
  std::printf("\nratio of medians, %d / %d messages: %.2fx (load average %s before, %s after)\n",
              big, small, summarize(vb).median / summarize(vs).median, load_before.c_str(),
              loadavg().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 50, messages = 1000, big = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--runs"))
      runs = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--messages"))
      messages = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--big"))
      big = std::atoi(argv[i + 1]);
  }
  if (big > 0) return small_vs_big(runs, messages, big);
  std::printf("machine: %s\n", machine_description().c_str());
  BenchRepo repo;
  repo.register_agent("reader");
  for (int c = 0; c < 4; ++c) repo.register_agent("s" + std::to_string(c));
  send_burst(repo.sock(), 4, messages, "@reader", "inbox bench message with a realistic-ish body");
  std::printf("inbox of @reader: %d messages; %d runs each\n\n", messages, runs);
  std::printf("| command | runs | min ms | median ms | p90 ms | max ms | mean ms |\n");
  std::printf("|---|---|---|---|---|---|---|\n");

  std::vector<double> v;
  for (int i = 0; i < runs; ++i) v.push_back(time_program("/bin/true", repo.root(), {}));
  report("`/bin/true` (spawn + wait, this machine's floor)", v);
  v.clear();
  for (int i = 0; i < runs; ++i) v.push_back(time_cli(repo.root(), "reader", {"--version"}));
  report("`thrum --version` (process start, no daemon)", v);
  v.clear();
  for (int i = 0; i < runs; ++i)
    v.push_back(time_cli(repo.root(), "reader", {"inbox", "--unread"}));
  report("`thrum inbox --unread` (1,000 unread)", v);
  v.clear();
  for (int i = 0; i < runs; ++i) v.push_back(time_cli(repo.root(), "reader", {"inbox"}));
  report("`thrum inbox`", v);
  v.clear();
  for (int i = 0; i < runs; ++i) v.push_back(time_cli(repo.root(), "reader", {"--json", "inbox"}));
  report("`thrum --json inbox`", v);
  return 0;
}
