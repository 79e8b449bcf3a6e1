#include "support/netns.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>

namespace thrum::test {
namespace {

constexpr const char* kPrefix = "thrumlab-";

std::atomic<int> g_seq{0};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

RunResult run_ip(const std::vector<std::string>& args) {
  if (ip_binary().empty()) return RunResult{-1, "", "iproute2's ip is not installed"};
  return run_process(ip_binary(), args, "/", {}, std::nullopt, std::chrono::seconds(30));
}

bool parse_cidr(const std::string& cidr, std::uint32_t& ip, int& prefix) {
  const auto slash = cidr.find('/');
  if (slash == std::string::npos || slash + 1 >= cidr.size()) return false;
  in_addr a{};
  if (::inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &a) != 1) return false;
  const std::string p = cidr.substr(slash + 1);
  if (p.find_first_not_of("0123456789") != std::string::npos || p.size() > 2) return false;
  prefix = std::stoi(p);
  if (prefix > 32) return false;
  ip = ntohl(a.s_addr);
  return true;
}

bool pid_alive(int pid) {
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

}  // namespace

const std::string& ip_binary() {
  static const std::string path = [] {
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
      if (::access(p, X_OK) == 0) return std::string(p);
    return std::string();
  }();
  return path;
}

bool netns_available(std::string* why) {
  static std::once_flag once;
  static std::string reason;
  std::call_once(once, [] {
    if (::geteuid() != 0) {
      reason =
          "network namespace tests need root (running as uid " + std::to_string(::geteuid()) + ")";
      return;
    }
    if (ip_binary().empty()) {
      reason = "network namespace tests need iproute2's `ip` (apt-get install iproute2)";
      return;
    }
    NetLab::sweep_leftovers();
    const std::string probe = std::string(kPrefix) + std::to_string(::getpid()) + "-probe";
    RunResult add = run_ip({"netns", "add", probe});
    if (add.exit_code != 0) {
      reason = "cannot create a network namespace: " + trim(add.err);
      return;
    }
    RunResult bridge = run_ip({"-n", probe, "link", "add", "br0", "type", "bridge"});
    run_ip({"netns", "del", probe});
    if (bridge.exit_code != 0) reason = "cannot create a Linux bridge: " + trim(bridge.err);
  });
  if (why != nullptr) *why = reason;
  return reason.empty();
}

bool NetLab::address_allowed(const std::string& cidr) {
  std::uint32_t ip = 0;
  int prefix = 0;
  if (!parse_cidr(cidr, ip, prefix)) return false;
  struct Range {
    std::uint32_t base;
    int prefix;
  };
  for (const Range r : {Range{0xC6336400u, 24},     // 198.51.100.0/24 (TEST-NET-2)
                        Range{0xCB007100u, 24},     // 203.0.113.0/24 (TEST-NET-3)
                        Range{0x64400000u, 10}}) {  // 100.64.0.0/10 (tailnet / CGNAT)
    const std::uint32_t mask = ~std::uint32_t{0} << (32 - r.prefix);
    if (prefix >= r.prefix && (ip & mask) == r.base) return true;
  }
  return false;
}

void NetLab::sweep_leftovers() {
  RunResult list = run_ip({"netns", "list"});
  if (list.exit_code != 0) return;
  std::istringstream lines(list.out);
  std::string line;
  while (std::getline(lines, line)) {
    const std::string name = line.substr(0, line.find(' '));
    if (name.rfind(kPrefix, 0) != 0) continue;
    const std::size_t start = std::strlen(kPrefix);
    const std::size_t dash = name.find('-', start);
    if (dash == std::string::npos || dash == start) continue;
    const std::string pid_text = name.substr(start, dash - start);
    if (pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const int pid = std::stoi(pid_text);
    if (pid == ::getpid() || pid_alive(pid)) continue;
    run_ip({"netns", "del", name});
  }
}

NetLab::NetLab(int nodes, const std::string& tag) {
  std::string why;
  if (!netns_available(&why)) {
    error_ = why;
    return;
  }
  sweep_leftovers();
  const std::string base = std::string(kPrefix) + std::to_string(::getpid()) + "-" +
                           std::to_string(g_seq.fetch_add(1)) + "-" + tag;
  switch_ = base + "-sw";
  for (int i = 0; i < nodes; ++i) nodes_.push_back(base + "-n" + std::to_string(i));

  auto step = [&](const std::vector<std::string>& args) { return ip(args, &error_); };
  if (!step({"netns", "add", switch_})) return;
  created_.push_back(switch_);
  if (!step({"-n", switch_, "link", "set", "lo", "up"}) ||
      !step({"-n", switch_, "link", "add", "br0", "type", "bridge"}) ||
      !step({"-n", switch_, "link", "set", "br0", "up"}))
    return;
  for (int i = 0; i < nodes; ++i) {
    const std::string& n = nodes_[static_cast<std::size_t>(i)];
    const std::string port = "p" + std::to_string(i);
    if (!step({"netns", "add", n})) return;
    created_.push_back(n);
    // Both ends are created directly in their namespaces: no name ever appears in ours.
    if (!step({"-n", n, "link", "set", "lo", "up"}) ||
        !step({"link", "add", kDevice, "netns", n, "type", "veth", "peer", "name", port, "netns",
               switch_}) ||
        !step({"-n", switch_, "link", "set", port, "master", "br0"}) ||
        !step({"-n", switch_, "link", "set", port, "up"}) ||
        !step({"-n", n, "link", "set", kDevice, "up"}))
      return;
  }
  // Wait for carrier on every node, so that the first packet of a test is not dropped.
  for (const auto& n : nodes_) {
    bool up = false;
    for (int i = 0; i < 200 && !up; ++i) {
      RunResult r = run_ip({"-n", n, "-o", "link", "show", "dev", kDevice});
      up = r.out.find("LOWER_UP") != std::string::npos;
      if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!up) {
      error_ = n + ": " + kDevice + " has no carrier";
      return;
    }
  }
}

NetLab::~NetLab() {
  // Nodes first, then the switch; deleting a namespace deletes its interfaces (and so the other
  // end of each veth).
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) run_ip({"netns", "del", *it});
}

bool NetLab::ip(const std::vector<std::string>& args, std::string* error) {
  RunResult r = run_ip(args);
  if (r.exit_code == 0) return true;
  if (error != nullptr) {
    std::string cmd = "ip";
    for (const auto& a : args) cmd += " " + a;
    *error = cmd + ": " + (r.exit_code == -1 ? "timed out" : trim(r.err));
  }
  return false;
}

bool NetLab::node_ip(int node, const std::vector<std::string>& args, std::string* error) {
  if (node < 0 || node >= size()) {
    if (error != nullptr) *error = "no node " + std::to_string(node);
    return false;
  }
  std::vector<std::string> full = {"-n", ns(node)};
  full.insert(full.end(), args.begin(), args.end());
  return ip(full, error);
}

bool NetLab::add_address(int node, const std::string& cidr, std::string* error) {
  if (!address_allowed(cidr)) {
    if (error != nullptr)
      *error = cidr + " is outside 198.51.100.0/24, 203.0.113.0/24 and 100.64.0.0/10";
    return false;
  }
  return node_ip(node, {"addr", "add", cidr, "dev", kDevice}, error);
}

bool NetLab::del_address(int node, const std::string& cidr, std::string* error) {
  return node_ip(node, {"addr", "del", cidr, "dev", kDevice}, error);
}

bool NetLab::add_route(int node, const std::string& cidr, std::string* error) {
  if (!address_allowed(cidr)) {
    if (error != nullptr)
      *error = cidr + " is outside 198.51.100.0/24, 203.0.113.0/24 and 100.64.0.0/10";
    return false;
  }
  return node_ip(node, {"route", "add", cidr, "dev", kDevice}, error);
}

bool NetLab::del_route(int node, const std::string& cidr, std::string* error) {
  return node_ip(node, {"route", "del", cidr, "dev", kDevice}, error);
}

bool NetLab::set_link(int node, bool up, std::string* error) {
  return node_ip(node, {"link", "set", kDevice, up ? "up" : "down"}, error);
}

std::vector<std::string> NetLab::exec_prefix(int node) const {
  return {ip_binary(), "netns", "exec", ns(node)};
}

RunResult NetLab::run(int node, const std::vector<std::string>& argv,
                      std::chrono::milliseconds timeout) const {
  std::vector<std::string> args = {"netns", "exec", ns(node)};
  args.insert(args.end(), argv.begin(), argv.end());
  return run_process(ip_binary(), args, "/", {}, std::nullopt, timeout);
}

bool NetLab::run_in(int node, const std::function<void()>& fn) const {
  bool entered = false;
  std::exception_ptr thrown;
  const std::string name = ns(node);
  std::thread t([&] {
    ScopedNetns in_ns(name);
    if (!in_ns.ok()) return;
    entered = true;
    try {
      fn();
    } catch (...) {
      thrown = std::current_exception();
    }
  });
  t.join();
  if (thrown) std::rethrow_exception(thrown);
  return entered;
}

ScopedNetns::ScopedNetns(const std::string& name) {
  saved_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (saved_ < 0) {
    error_ = std::string("cannot open this thread's network namespace: ") + std::strerror(errno);
    return;
  }
  const std::string path = "/run/netns/" + name;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error_ = "cannot open " + path + ": " + std::strerror(errno);
    return;
  }
  if (::setns(fd, CLONE_NEWNET) != 0)
    error_ = "cannot enter network namespace " + name + ": " + std::strerror(errno);
  ::close(fd);
}

ScopedNetns::~ScopedNetns() {
  if (saved_ < 0) return;
  if (error_.empty()) ::setns(saved_, CLONE_NEWNET);
  ::close(saved_);
}

}  // namespace thrum::test
