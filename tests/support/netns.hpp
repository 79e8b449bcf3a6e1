#pragma once

// Network namespaces for tests that need more than loopback: network and tailscale transports,
// address changes, partitions. Everything stays inside namespaces this process creates; only
// TEST-NET addresses (198.51.100.0/24, 203.0.113.0/24) and the tailnet range (100.64.0.0/10)
// may be assigned, so no traffic can ever reach a real network. Needs root and iproute2.
//
//   thrum::test::NetLab lab(2);                       // switch + nodes 0 and 1
//   ASSERT_TRUE(lab.ok()) << lab.error();
//   ASSERT_TRUE(lab.add_address(0, "198.51.100.10/24"));
//   ASSERT_TRUE(lab.add_address(1, "198.51.100.11/24"));
//   thrum::test::Child daemon(lab.in(0), THRUM_TEST_BINARY, {"daemon", "run"}, repo);  // node 0
//   lab.run_in(1, [&] { /* this thread is in node 1's namespace */ });

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "support/process.hpp"

namespace thrum::test {

/// Whether this process can build a NetLab: running as root, an `ip` binary (iproute2), and a
/// probe namespace can actually be created (containers may forbid it). When not, `why` (if
/// given) says which, for GTEST_SKIP() << why. The probe runs once per process.
bool netns_available(std::string* why = nullptr);

/// The absolute path of iproute2's `ip`, or "" when there is none.
const std::string& ip_binary();

/// A switch and N nodes: one "switch" namespace holding a Linux bridge `br0`, and N node
/// namespaces, each with loopback up and one interface `eth0` (kDevice) that is a veth into the
/// bridge. Nodes start without addresses; add them with add_address(). Namespace names are
/// unique per process and lab (`thrumlab-<pid>-<seq>-<tag>-n<i>`, `...-sw`), so labs of
/// concurrent tests do not meet. The destructor deletes every namespace (and so every interface)
/// the lab made; the constructor first deletes leftovers of earlier runs whose process is gone.
///
/// Not thread-safe: use one lab from one thread (run_in() threads may run concurrently).
class NetLab {
 public:
  static constexpr const char* kDevice = "eth0";

  /// Builds the lab. Check ok() (and error()) before using it.
  explicit NetLab(int nodes, const std::string& tag = "lab");
  ~NetLab();
  NetLab(const NetLab&) = delete;
  NetLab& operator=(const NetLab&) = delete;

  bool ok() const { return error_.empty(); }
  /// What failed while building the lab ("" when ok()).
  const std::string& error() const { return error_; }
  /// Number of nodes.
  int size() const { return static_cast<int>(nodes_.size()); }
  /// The `ip netns` name of node `node` (0-based).
  const std::string& ns(int node) const { return nodes_.at(static_cast<std::size_t>(node)); }
  /// The `ip netns` name of the switch namespace.
  const std::string& switch_ns() const { return switch_; }
  /// For run_process()/run_thrum()/Child: run a child inside node `node`.
  InNetns in(int node) const { return InNetns{ns(node)}; }

  /// `ip -n <node> addr add <cidr> dev eth0`. `cidr` must lie inside 198.51.100.0/24,
  /// 203.0.113.0/24 or 100.64.0.0/10 (prefix included), else nothing is done. False (and
  /// `error` set, when given) on failure.
  bool add_address(int node, const std::string& cidr, std::string* error = nullptr);
  /// `ip -n <node> addr del <cidr> dev eth0`.
  bool del_address(int node, const std::string& cidr, std::string* error = nullptr);
  /// `ip -n <node> route add <cidr> dev eth0` (on-link, no gateway). Same address rule.
  bool add_route(int node, const std::string& cidr, std::string* error = nullptr);
  /// `ip -n <node> route del <cidr> dev eth0`.
  bool del_route(int node, const std::string& cidr, std::string* error = nullptr);
  /// Sets node `node`'s eth0 down or up: a cable pulled and plugged back (a partition).
  bool set_link(int node, bool up, std::string* error = nullptr);

  /// The command prefix that runs a program inside node `node`:
  /// `{"<path of ip>", "netns", "exec", "<name>"}`. `ip netns exec` also remounts /sys for the
  /// program; use in() when that does not matter.
  std::vector<std::string> exec_prefix(int node) const;
  /// Runs `argv` (argv[0] looked up in PATH) inside node `node` through exec_prefix() and waits.
  RunResult run(int node, const std::vector<std::string>& argv,
                std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;
  /// Runs `fn` on a new thread that has entered node `node`'s namespace and waits for it.
  /// Sockets `fn` creates belong to that namespace and stay usable from any thread afterwards.
  /// An exception thrown by `fn` is rethrown here. False when the namespace cannot be entered.
  bool run_in(int node, const std::function<void()>& fn) const;

  /// Whether `cidr` lies inside one of the allowed ranges (see add_address()).
  static bool address_allowed(const std::string& cidr);
  /// Deletes `thrumlab-<pid>-*` namespaces whose process no longer exists.
  static void sweep_leftovers();

 private:
  bool ip(const std::vector<std::string>& args, std::string* error);
  bool node_ip(int node, const std::vector<std::string>& args, std::string* error);

  std::string switch_;
  std::vector<std::string> nodes_;
  std::vector<std::string> created_;  ///< namespaces to delete, in creation order
  std::string error_;
};

/// Moves the calling thread into network namespace `name` (an `ip netns` name) for its scope and
/// back on destruction. Only this thread moves; threads it starts inherit the namespace.
class ScopedNetns {
 public:
  explicit ScopedNetns(const std::string& name);
  ~ScopedNetns();
  ScopedNetns(const ScopedNetns&) = delete;
  ScopedNetns& operator=(const ScopedNetns&) = delete;
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  int saved_ = -1;
  std::string error_;
};

}  // namespace thrum::test
