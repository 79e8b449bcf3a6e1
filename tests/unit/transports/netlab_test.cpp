// The network-namespace lab the network and tailscale tests run in (tests/support/netns.hpp).
#include "support/netns.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <gtest/gtest.h>

namespace thrum::test {
namespace {

#define SKIP_WITHOUT_NETNS()                           \
  do {                                                 \
    std::string why_;                                  \
    if (!netns_available(&why_)) GTEST_SKIP() << why_; \
  } while (0)

int tcp_listen(const std::string& ip) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 8) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

/// A connected socket, or -1 when the connection failed or took longer than `timeout_ms`.
int tcp_connect(const std::string& ip, int port, int timeout_ms) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int err = 0;
  socklen_t len = sizeof err;
  if (::poll(&p, 1, timeout_ms) != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
      err != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string namespaces() {
  return run_process(ip_binary(), {"netns", "list"}, "/").out;
}

TEST(NetLab, NodesReachEachOtherOverTheBridge) {
  SKIP_WITHOUT_NETNS();
  NetLab lab(2);
  ASSERT_TRUE(lab.ok()) << lab.error();
  ASSERT_TRUE(lab.add_address(0, "198.51.100.10/24"));
  ASSERT_TRUE(lab.add_address(1, "198.51.100.11/24"));
  int listener = -1;
  ASSERT_TRUE(lab.run_in(0, [&] { listener = tcp_listen("198.51.100.10"); }));
  ASSERT_GE(listener, 0);
  int client = -1;
  ASSERT_TRUE(
      lab.run_in(1, [&] { client = tcp_connect("198.51.100.10", port_of(listener), 3000); }));
  ASSERT_GE(client, 0);
  const int server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(server, 0);
  sockaddr_in peer{};
  socklen_t len = sizeof peer;
  ::getpeername(server, reinterpret_cast<sockaddr*>(&peer), &len);
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &peer.sin_addr, text, sizeof text);
  EXPECT_STREQ(text, "198.51.100.11") << "the connection did not come from node 1";
  ::close(server);
  ::close(client);
  ::close(listener);
  // The test process's own namespace never saw these addresses.
  EXPECT_EQ(tcp_listen("198.51.100.10"), -1);
}

TEST(NetLab, ChildProcessesRunInsideANode) {
  SKIP_WITHOUT_NETNS();
  NetLab lab(1);
  ASSERT_TRUE(lab.ok()) << lab.error();
  ASSERT_TRUE(lab.add_address(0, "203.0.113.5/24"));
  RunResult direct = run_process(lab.in(0), ip_binary(), {"-o", "-4", "addr", "show"}, "/");
  EXPECT_EQ(direct.exit_code, 0) << direct.err;
  EXPECT_NE(direct.out.find("203.0.113.5/24"), std::string::npos) << direct.out;
  EXPECT_NE(direct.out.find("127.0.0.1/8"), std::string::npos) << "loopback is up in each node";
  RunResult via_ip = lab.run(0, {"ip", "-o", "-4", "addr", "show", "dev", NetLab::kDevice});
  EXPECT_EQ(via_ip.exit_code, 0) << via_ip.err;
  EXPECT_NE(via_ip.out.find("203.0.113.5/24"), std::string::npos) << via_ip.out;
  const auto prefix = lab.exec_prefix(0);
  ASSERT_EQ(prefix.size(), 4u);
  EXPECT_EQ(prefix[3], lab.ns(0));
  RunResult missing =
      run_process(InNetns{"thrumlab-no-such-namespace"}, ip_binary(), {"addr"}, "/");
  EXPECT_EQ(missing.exit_code, 125);
  EXPECT_NE(missing.err.find("cannot enter network namespace"), std::string::npos);
}

TEST(NetLab, OnLinkRoutesJoinTwoTestNets) {
  SKIP_WITHOUT_NETNS();
  NetLab lab(2);
  ASSERT_TRUE(lab.ok()) << lab.error();
  ASSERT_TRUE(lab.add_address(0, "198.51.100.10/24"));
  ASSERT_TRUE(lab.add_address(1, "203.0.113.20/24"));
  int listener = -1;
  ASSERT_TRUE(lab.run_in(1, [&] { listener = tcp_listen("203.0.113.20"); }));
  int before = 0;
  lab.run_in(0, [&] { before = tcp_connect("203.0.113.20", port_of(listener), 300); });
  EXPECT_EQ(before, -1) << "reachable without a route";
  std::string err;
  ASSERT_TRUE(lab.add_route(0, "203.0.113.0/24", &err)) << err;
  ASSERT_TRUE(lab.add_route(1, "198.51.100.0/24", &err)) << err;
  int after = -1;
  lab.run_in(0, [&] { after = tcp_connect("203.0.113.20", port_of(listener), 3000); });
  EXPECT_GE(after, 0);
  if (after >= 0) ::close(after);
  if (before >= 0) ::close(before);
  ASSERT_TRUE(lab.del_route(0, "203.0.113.0/24", &err)) << err;
  ::close(listener);
}

TEST(NetLab, LinkDownCutsTrafficAndUpRestoresIt) {
  SKIP_WITHOUT_NETNS();
  NetLab lab(2);
  ASSERT_TRUE(lab.ok()) << lab.error();
  ASSERT_TRUE(lab.add_address(0, "198.51.100.10/24"));
  ASSERT_TRUE(lab.add_address(1, "198.51.100.11/24"));
  int listener = -1;
  lab.run_in(0, [&] { listener = tcp_listen("198.51.100.10"); });
  ASSERT_GE(listener, 0);
  ASSERT_TRUE(lab.set_link(1, false));
  int down = 0;
  lab.run_in(1, [&] { down = tcp_connect("198.51.100.10", port_of(listener), 300); });
  EXPECT_EQ(down, -1);
  ASSERT_TRUE(lab.set_link(1, true));
  int up = -1;
  for (int i = 0; i < 50 && up < 0; ++i)  // carrier comes back asynchronously
    lab.run_in(1, [&] { up = tcp_connect("198.51.100.10", port_of(listener), 200); });
  EXPECT_GE(up, 0);
  if (up >= 0) ::close(up);
  ::close(listener);
}

TEST(NetLab, RefusesAddressesOutsideTheTestNets) {
  EXPECT_TRUE(NetLab::address_allowed("198.51.100.10/24"));
  EXPECT_TRUE(NetLab::address_allowed("203.0.113.1/32"));
  EXPECT_TRUE(NetLab::address_allowed("100.64.0.1/10"));
  EXPECT_TRUE(NetLab::address_allowed("100.127.1.1/24"));
  EXPECT_FALSE(NetLab::address_allowed("198.51.100.10/16")) << "the prefix would leave TEST-NET-2";
  EXPECT_FALSE(NetLab::address_allowed("10.0.0.1/24"));
  EXPECT_FALSE(NetLab::address_allowed("100.128.0.1/24"));
  EXPECT_FALSE(NetLab::address_allowed("198.51.100.10"));
  SKIP_WITHOUT_NETNS();
  NetLab lab(1);
  ASSERT_TRUE(lab.ok()) << lab.error();
  std::string err;
  EXPECT_FALSE(lab.add_address(0, "192.168.1.10/24", &err));
  EXPECT_NE(err.find("outside"), std::string::npos) << err;
  EXPECT_FALSE(lab.add_route(0, "0.0.0.0/0", &err));
  EXPECT_FALSE(lab.add_address(5, "198.51.100.10/24", &err));
  EXPECT_NE(err.find("no node 5"), std::string::npos) << err;
}

TEST(NetLab, DestructorDeletesItsNamespacesAndLeftoversOfDeadRunsAreSwept) {
  SKIP_WITHOUT_NETNS();
  std::vector<std::string> names;
  {
    NetLab lab(2, "gone");
    ASSERT_TRUE(lab.ok()) << lab.error();
    names = {lab.switch_ns(), lab.ns(0), lab.ns(1)};
    for (const auto& n : names) EXPECT_NE(namespaces().find(n), std::string::npos) << n;
  }
  for (const auto& n : names) EXPECT_EQ(namespaces().find(n), std::string::npos) << n;

  // A namespace named after a process that has exited, as a crashed run leaves behind.
  const pid_t dead = ::fork();
  if (dead == 0) _exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::string leftover = "thrumlab-" + std::to_string(dead) + "-0-crashed-sw";
  ASSERT_EQ(run_process(ip_binary(), {"netns", "add", leftover}, "/").exit_code, 0);
  NetLab::sweep_leftovers();
  EXPECT_EQ(namespaces().find(leftover), std::string::npos);
}

TEST(NetLab, ScopedNetnsMovesOnlyThisThreadAndComesBack) {
  SKIP_WITHOUT_NETNS();
  NetLab lab(1);
  ASSERT_TRUE(lab.ok()) << lab.error();
  ASSERT_TRUE(lab.add_address(0, "100.64.3.1/24"));
  int fd = -1;
  {
    ScopedNetns in(lab.ns(0));
    ASSERT_TRUE(in.ok()) << in.error();
    fd = tcp_listen("100.64.3.1");
    EXPECT_GE(fd, 0) << "the address is bindable inside the node";
  }
  EXPECT_EQ(tcp_listen("100.64.3.1"), -1) << "back in the original namespace";
  if (fd >= 0) ::close(fd);
  ScopedNetns bad("thrumlab-no-such-namespace");
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace thrum::test
