// The built libthrum_transport_tailscale.so against the fake libtailscale
// (tests/support/fake_libtailscale) in network namespaces with tailnet addresses, and against the
// host network stack in mode system. Tests that need namespaces skip when not run as root.
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/helpers.hpp"
#include "support/netns.hpp"
#include "support/process.hpp"
#include "thrum/core/plugin_host.hpp"
#include "thrum/core/plugin_loader.hpp"
#include "thrum/sdk/plugin.hpp"

namespace thrum::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using sdk::Errc;
using sdk::ITransport;

constexpr const char* kAuthKeyRequired =
    "auth key is required for --type tailscale (set THRUM_TS_AUTHKEY or pass --auth-key)";

int code(Errc e) {
  return static_cast<int>(e);
}

/// Records what the plugin logs.
class CapturingHost final : public sdk::IHost {
 public:
  void log(sdk::LogLevel level, std::string_view message) noexcept override {
    std::lock_guard lock(mu_);
    lines_.emplace_back(level, std::string(message));
  }
  std::string text() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& [level, line] : lines_) out += line + "\n";
    return out;
  }
  bool has(const std::string& part, sdk::LogLevel level) const {
    std::lock_guard lock(mu_);
    for (const auto& [l, line] : lines_)
      if (l == level && line.find(part) != std::string::npos) return true;
    return false;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<sdk::LogLevel, std::string>> lines_;
};

/// The built plugin's descriptor (the library stays loaded, as the daemon keeps plugins).
const ThrumTransportPluginDescriptor* descriptor() {
  static const ThrumTransportPluginDescriptor* d = [] {
    void* h = ::dlopen(THRUM_TAILSCALE_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    return h == nullptr ? nullptr
                        : static_cast<const ThrumTransportPluginDescriptor*>(
                              ::dlsym(h, THRUM_SDK_DESCRIPTOR_SYMBOL_NAME));
  }();
  return d;
}

struct Destroy {
  void operator()(ITransport* t) const { descriptor()->destroy(t); }
};
using TransportPtr = std::unique_ptr<ITransport, Destroy>;

/// A transport from the built plugin, configured with the policy options `policy`.
TransportPtr make_transport(sdk::IHost* host, const json& policy = json::object()) {
  const auto* d = descriptor();
  if (d == nullptr) {
    ADD_FAILURE() << "cannot load " << THRUM_TAILSCALE_PLUGIN << ": " << ::dlerror();
    return nullptr;
  }
  TransportPtr t(d->create(host));
  if (!t) {
    ADD_FAILURE() << "the plugin's factory returned null";
    return nullptr;
  }
  const auto st = t->configure(policy.dump());
  EXPECT_TRUE(st.ok()) << st.message;
  return t;
}

/// ListenSpec::options_json as the daemon builds it: the policy's options plus `host`.
std::string listen_options(const fs::path& state_dir, const std::string& auth_key,
                           json policy = json::object()) {
  policy["host"] = {{"state_dir", state_dir.string()}, {"auth_key", auth_key}};
  return policy.dump();
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("thrum-ts-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(std::random_device{}()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path operator/(const std::string& p) const { return path_ / p; }

 private:
  fs::path path_;
};

/// Sets (nullptr: unsets) an environment variable for the scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value != nullptr ? ::setenv(name, value, 1) : ::unsetenv(name);
  }
  ~ScopedEnv() { old_ ? ::setenv(name_.c_str(), old_->c_str(), 1) : ::unsetenv(name_.c_str()); }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

bool wait_readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1 && (p.revents & (POLLIN | POLLHUP)) != 0;
}

bool cloexec(int fd) {
  return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

std::string peer_ip(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "";
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
  return text;
}

/// Sends `out` on `a` and expects it on `b`.
void expect_bytes(int a, int b, const std::string& out) {
  ASSERT_EQ(::send(a, out.data(), out.size(), MSG_NOSIGNAL), static_cast<ssize_t>(out.size()));
  std::string got;
  char buf[256];
  while (got.size() < out.size() && wait_readable(b, 3000)) {
    const ssize_t n = ::recv(b, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(got, out);
}

using ListenResult = sdk::Result<std::unique_ptr<sdk::IListener>>;

// ---- the plugin as the daemon loads it ------------------------------------------------------

TEST(TailscalePlugin, LoadsThroughEveryStageOfTheCoreLoader) {
  core::PluginLoader::Request req;
  req.options_json = R"({"mode": "embedded"})";
  auto r = core::PluginLoader().load(THRUM_TAILSCALE_PLUGIN, req);
  ASSERT_TRUE(r.ok()) << r.refusal();
  EXPECT_EQ(r.info.id, "tailscale");
  ASSERT_TRUE(r.transport);
  const auto c = r.transport->capabilities();
  EXPECT_FALSE(c.needs_tls);
  EXPECT_TRUE(c.provides_listener);
  EXPECT_FALSE(c.needs_address);
  EXPECT_FALSE(c.loopback_only);
  EXPECT_FALSE(c.needs_repo_path);
}

TEST(TailscalePlugin, PolicyOptionsReachConfigureAndMistakesRefuseTheTransport) {
  TempDir tmp;
  const fs::path policy = tmp / "transports.yaml";
  ScopedEnv path("THRUM_PLUGIN_PATH", fs::path(THRUM_TAILSCALE_PLUGIN).parent_path().c_str());
  ScopedEnv pol("THRUM_POLICY", policy.c_str());
  core::PluginHost::Options o;
  o.etc_policy = tmp / "none.yaml";

  std::ofstream(policy) << "transports:\n  tailscale: { enabled: true, mode: system, library: "
                           "/usr/local/lib/libtailscale.so }\n";
  auto good = core::PluginHost::load(o);
  std::string why;
  EXPECT_TRUE(good->find("tailscale", &why)) << why;

  std::ofstream(policy) << "transports:\n  tailscale: { enabled: true, moed: system }\n";
  auto typo = core::PluginHost::load(o);
  EXPECT_FALSE(typo->find("tailscale", &why));
  EXPECT_NE(why.find("refused: configure: tailscale: unknown option \"moed\""), std::string::npos)
      << why;
}

// ---- library lookup (no namespaces needed: these fail before any network) ---------------------

TEST(TailscaleEmbedded, MissingLibraryNamesEveryPathSearchedAndTheDocs) {
  CapturingHost host;
  TempDir tmp;
  ScopedEnv env("THRUM_LIBTAILSCALE", "/nonexistent/thrum-test/libtailscale.so");
  auto t = make_transport(&host, {{"library", "/also/missing/libtailscale.so"}});
  ASSERT_TRUE(t);
  sdk::ListenSpec spec;
  spec.options_json = listen_options(tmp / "tsnet", "tskey-unused");
  auto r = t->listen(spec);
  ASSERT_FALSE(r.ok());
  const std::string& m = r.status().message;
  EXPECT_EQ(r.status().code, code(Errc::kUnavailable));
  EXPECT_NE(m.find("/nonexistent/thrum-test/libtailscale.so"), std::string::npos) << m;
  EXPECT_NE(m.find("THRUM_LIBTAILSCALE"), std::string::npos) << m;
  EXPECT_NE(m.find("/also/missing/libtailscale.so"), std::string::npos) << m;
  EXPECT_NE(m.find("libtailscale.so through the default library search"), std::string::npos) << m;
  EXPECT_NE(m.find("docs/tailscale.md"), std::string::npos) << m;
  EXPECT_EQ(m.find("tskey-unused"), std::string::npos) << "the key leaked into: " << m;
}

TEST(TailscaleEmbedded, LibraryMissingASymbolIsRefusedNamingItAndThePath) {
  CapturingHost host;
  TempDir tmp;
  ScopedEnv env("THRUM_LIBTAILSCALE", THRUM_FAKE_LIBTAILSCALE_NO_GETREMOTEADDR);
  auto t = make_transport(&host);
  ASSERT_TRUE(t);
  sdk::ListenSpec spec;
  spec.options_json = listen_options(tmp / "tsnet", "tskey-unused");
  auto r = t->listen(spec);
  ASSERT_FALSE(r.ok());
  const std::string& m = r.status().message;
  EXPECT_NE(m.find("missing symbol tailscale_getremoteaddr"), std::string::npos) << m;
  EXPECT_NE(m.find("libtailscale_fake_no_getremoteaddr.so"), std::string::npos) << m;
  EXPECT_NE(m.find("refused"), std::string::npos) << m;
}

TEST(TailscaleEmbedded, NoKeyAndNoStateIsRefusedWithTheExactMessage) {
  CapturingHost host;
  TempDir tmp;
  ScopedEnv env("THRUM_LIBTAILSCALE", THRUM_FAKE_LIBTAILSCALE);
  auto t = make_transport(&host);
  ASSERT_TRUE(t);
  sdk::ListenSpec spec;
  spec.options_json = listen_options(tmp / "var" / "tsnet", "");
  auto r = t->listen(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code, code(Errc::kInvalidArgument));
  EXPECT_EQ(r.status().message, kAuthKeyRequired);
  EXPECT_EQ(file_mode(tmp / "var" / "tsnet"), 0700) << "the state dir is private";
}

TEST(TailscaleEmbedded, NodeThatNeverComesUpTimesOutAndIsCancelled) {
  // A state file the fake does not recognise: the plugin lets the library try without a key,
  // and the fake, like tsnet, waits for an interactive login.
  CapturingHost host;
  TempDir tmp;
  fs::create_directories(tmp / "tsnet");
  std::ofstream(tmp / "tsnet" / "tailscaled.state") << "{\"stale\": true}";
  ScopedEnv env("THRUM_LIBTAILSCALE", THRUM_FAKE_LIBTAILSCALE);
  ScopedEnv timeout("THRUM_TS_UP_TIMEOUT_MS", "300");
  auto t = make_transport(&host);
  ASSERT_TRUE(t);
  sdk::ListenSpec spec;
  spec.options_json = listen_options(tmp / "tsnet", "");
  const auto start = std::chrono::steady_clock::now();
  auto r = t->listen(spec);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code, code(Errc::kTimeout));
  EXPECT_NE(r.status().message.find("did not come up within 300 ms"), std::string::npos)
      << r.status().message;
  EXPECT_TRUE(wait_until([&] {
    return host.has("tsnet: To start this tsnet server", sdk::LogLevel::kDebug);
  })) << "the library's log lines reach the host at debug:\n"
      << host.text();
}

// ---- over the fake tailnet ------------------------------------------------------------------

/// Two nodes on one bridge: node 0 at 100.64.0.1, node 1 at 100.64.0.2.
class TailnetLab : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!netns_available(&why)) GTEST_SKIP() << why;
    lab_ = std::make_unique<NetLab>(2, "ts");
    ASSERT_TRUE(lab_->ok()) << lab_->error();
    ASSERT_TRUE(lab_->add_address(0, "100.64.0.1/24"));
    ASSERT_TRUE(lab_->add_address(1, "100.64.0.2/24"));
  }

  /// listen() called from inside node `node` (the library's node lives where it came up).
  ListenResult listen_in(int node, ITransport& t, const std::string& options,
                         std::uint16_t port = 0) {
    std::optional<ListenResult> r;
    sdk::ListenSpec spec;
    spec.options_json = options;
    spec.port = port;
    EXPECT_TRUE(lab_->run_in(node, [&] { r.emplace(t.listen(spec)); }));
    if (!r) return sdk::Status::error(Errc::kInternal, "did not run");
    return std::move(*r);
  }

  std::unique_ptr<NetLab> lab_;
  TempDir tmp_;
};

TEST_F(TailnetLab, EmbeddedListenInOneNamespaceDialFromTheOtherBytesBothWays) {
  ScopedEnv env("THRUM_LIBTAILSCALE", THRUM_FAKE_LIBTAILSCALE);
  CapturingHost host_a, host_b;
  auto a = make_transport(&host_a);
  auto b = make_transport(&host_b);
  ASSERT_TRUE(a && b);
  auto la = listen_in(0, *a, listen_options(tmp_ / "a", "tskey-node-a-secret"));
  ASSERT_TRUE(la.ok()) << la.status().message;
  auto lb = listen_in(1, *b, listen_options(tmp_ / "b", "tskey-node-b-secret"), 41641);
  ASSERT_TRUE(lb.ok()) << lb.status().message;
  EXPECT_EQ(lb.value()->local_endpoint(), (sdk::Endpoint{"100.64.0.2", 41641}));

  const auto port = la.value()->local_endpoint().port;
  EXPECT_NE(port, 0) << "a port is picked when asked for any";
  auto ep = a->advertise({"", port});
  ASSERT_TRUE(ep.ok()) << ep.status().message;
  EXPECT_EQ(ep.value(), (sdk::Endpoint{"100.64.0.1", port}));

  // Dialed from this (the test's own) thread: the node, not the caller, decides the namespace.
  auto dialed = b->dial(ep.value(), std::chrono::seconds(3));
  ASSERT_TRUE(dialed.ok()) << dialed.status().message;
  const int client = dialed.value();
  EXPECT_TRUE(cloexec(client));
  ASSERT_TRUE(wait_readable(la.value()->fd(), 3000)) << "no connection pending on node 0";
  auto accepted = la.value()->accept();
  ASSERT_TRUE(accepted.ok()) << accepted.status().message;
  const int server = accepted.value();
  EXPECT_TRUE(cloexec(server)) << "accepted fds must be FD_CLOEXEC";
  EXPECT_EQ(peer_ip(server), "100.64.0.2") << "the connection came from node 1's tailnet IP";
  expect_bytes(client, server, "hello from node 1");
  expect_bytes(server, client, "hello back from node 0");
  EXPECT_FALSE(la.value()->accept().ok()) << "nothing else pending";
  ::close(client);
  ::close(server);

  EXPECT_TRUE(wait_until([&] {
    return host_a.has("tsnet: fake-libtailscale: up", sdk::LogLevel::kDebug);
  })) << host_a.text();
  EXPECT_TRUE(host_a.has("accepted a connection from 100.64.0.2", sdk::LogLevel::kDebug))
      << host_a.text();
  for (const auto* h : {&host_a, &host_b}) {
    EXPECT_EQ(h->text().find("node-a-secret"), std::string::npos) << h->text();
    EXPECT_EQ(h->text().find("node-b-secret"), std::string::npos) << h->text();
  }
}

TEST_F(TailnetLab, KeyWithoutTheTskeyPrefixSurfacesTheLibrarysError) {
  ScopedEnv env("THRUM_LIBTAILSCALE", THRUM_FAKE_LIBTAILSCALE);
  CapturingHost host;
  auto t = make_transport(&host);
  ASSERT_TRUE(t);
  auto r = listen_in(0, *t, listen_options(tmp_ / "a", "bogus-key-123456"));
  ASSERT_FALSE(r.ok());
  const std::string& m = r.status().message;
  EXPECT_EQ(r.status().code, code(Errc::kInvalidArgument));
  EXPECT_NE(m.find("cannot bring the node up: invalid key"), std::string::npos) << m;
  EXPECT_EQ(m.find("bogus-key-123456"), std::string::npos) << "the key leaked into: " << m;
  EXPECT_EQ(host.text().find("bogus-key-123456"), std::string::npos) << host.text();
  EXPECT_FALSE(fs::exists(tmp_ / "a" / "fake-tailscale.state"));
}

TEST_F(TailnetLab, SecondStartWithTheSameStateNeedsNoKeyAndKeepsTheIp) {
  ScopedEnv env("THRUM_LIBTAILSCALE", THRUM_FAKE_LIBTAILSCALE);
  CapturingHost host;
  std::string first_ip;
  {
    auto t = make_transport(&host);
    ASSERT_TRUE(t);
    auto l = listen_in(0, *t, listen_options(tmp_ / "tsnet", "tskey-first-run"));
    ASSERT_TRUE(l.ok()) << l.status().message;
    first_ip = l.value()->local_endpoint().ip;
  }
  EXPECT_EQ(first_ip, "100.64.0.1");
  ASSERT_TRUE(fs::exists(tmp_ / "tsnet" / "fake-tailscale.state"));
  EXPECT_EQ(slurp(tmp_ / "tsnet" / "fake-tailscale.state").find("tskey"), std::string::npos);

  auto again = make_transport(&host);
  ASSERT_TRUE(again);
  auto l = listen_in(0, *again, listen_options(tmp_ / "tsnet", ""));
  ASSERT_TRUE(l.ok()) << l.status().message;
  EXPECT_EQ(l.value()->local_endpoint().ip, first_ip);
  auto ep = again->advertise({"", l.value()->local_endpoint().port});
  ASSERT_TRUE(ep.ok()) << ep.status().message;
  EXPECT_EQ(ep.value().ip, first_ip);
}

TEST_F(TailnetLab, PolicyLibraryHostnameAndControlUrlReachTheLibrary) {
  ScopedEnv no_env_lib("THRUM_LIBTAILSCALE", nullptr);
  ScopedEnv name("THRUM_TS_HOSTNAME", "build-box-thrum");
  ScopedEnv control("THRUM_TS_CONTROL_URL", "https://headscale.example.invalid");
  CapturingHost host;
  auto t = make_transport(&host, {{"library", THRUM_FAKE_LIBTAILSCALE}});
  ASSERT_TRUE(t);
  auto l = listen_in(0, *t, listen_options(tmp_ / "tsnet", "tskey-abc"));
  ASSERT_TRUE(l.ok()) << l.status().message;
  const std::string state = slurp(tmp_ / "tsnet" / "fake-tailscale.state");
  EXPECT_NE(state.find("hostname=build-box-thrum"), std::string::npos) << state;
  EXPECT_NE(state.find("control_url=https://headscale.example.invalid"), std::string::npos)
      << state;
  EXPECT_TRUE(host.has("node up hostname=build-box-thrum ip=100.64.0.1", sdk::LogLevel::kInfo))
      << host.text();
  EXPECT_TRUE(host.has("libtailscale_fake.so", sdk::LogLevel::kInfo)) << host.text();
}

TEST_F(TailnetLab, AdvertiseRefusesAnIpThatIsNotThisNodes) {
  ScopedEnv env("THRUM_LIBTAILSCALE", THRUM_FAKE_LIBTAILSCALE);
  CapturingHost host;
  auto t = make_transport(&host);
  ASSERT_TRUE(t);
  auto l = listen_in(0, *t, listen_options(tmp_ / "tsnet", "tskey-abc"));
  ASSERT_TRUE(l.ok()) << l.status().message;
  const auto port = l.value()->local_endpoint().port;
  EXPECT_TRUE(t->advertise({"100.64.0.1", port}).ok());
  auto other = t->advertise({"100.64.0.2", port});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code, code(Errc::kInvalidArgument));
  EXPECT_NE(other.status().message.find("not this node's tailnet IP (100.64.0.1)"),
            std::string::npos)
      << other.status().message;
}

TEST_F(TailnetLab, ClosedListenerRefusesAndDestroyingTheTransportReleasesTheNode) {
  ScopedEnv env("THRUM_LIBTAILSCALE", THRUM_FAKE_LIBTAILSCALE);
  CapturingHost host_a, host_b;
  auto a = make_transport(&host_a);
  auto b = make_transport(&host_b);
  ASSERT_TRUE(a && b);
  auto first = listen_in(0, *a, listen_options(tmp_ / "a", "tskey-a"));
  auto second = listen_in(0, *a, listen_options(tmp_ / "a", "tskey-a"));
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(listen_in(1, *b, listen_options(tmp_ / "b", "tskey-b")).ok());

  const sdk::Endpoint closed = first.value()->local_endpoint();
  first.value()->close();
  first.value()->close();
  EXPECT_EQ(first.value()->fd(), -1);
  auto refused = b->dial(closed, std::chrono::seconds(2));
  EXPECT_FALSE(refused.ok()) << "dialed a closed listener";
  EXPECT_EQ(refused.status().code, code(Errc::kUnavailable)) << refused.status().message;

  // The node goes away with its transport: the listener it handed out ends.
  const int fd = second.value()->fd();
  a.reset();
  EXPECT_TRUE(host_a.has("tailscale: node closed", sdk::LogLevel::kInfo)) << host_a.text();
  ASSERT_TRUE(wait_readable(fd, 3000)) << "the listener did not see the node go";
  auto after = second.value()->accept();
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.status().code, code(Errc::kIo)) << after.status().message;
  auto gone = b->dial(second.value()->local_endpoint(), std::chrono::seconds(2));
  EXPECT_FALSE(gone.ok());
}

// ---- mode system: the host's tailscaled (here: the namespace's own 100.64 addresses) ----------

TEST_F(TailnetLab, SystemModeListensOnTheTailnetAddressAndDialsThroughTheOs) {
  CapturingHost host_a, host_b;
  auto a = make_transport(&host_a, {{"mode", "system"}});
  auto b = make_transport(&host_b, {{"mode", "system"}});
  ASSERT_TRUE(a && b);
  auto la = listen_in(0, *a, json{{"mode", "system"}}.dump());
  ASSERT_TRUE(la.ok()) << la.status().message;
  EXPECT_EQ(la.value()->local_endpoint().ip, "100.64.0.1");
  std::optional<sdk::Result<sdk::Endpoint>> ep;
  lab_->run_in(0, [&] { ep.emplace(a->advertise({"", la.value()->local_endpoint().port})); });
  ASSERT_TRUE(ep && ep->ok()) << (ep ? ep->status().message : "");
  EXPECT_EQ(ep->value().ip, "100.64.0.1");

  std::optional<sdk::Result<int>> dialed;
  lab_->run_in(1, [&] { dialed.emplace(b->dial(ep->value(), std::chrono::seconds(3))); });
  ASSERT_TRUE(dialed && dialed->ok()) << (dialed ? dialed->status().message : "");
  ASSERT_TRUE(wait_readable(la.value()->fd(), 3000));
  auto accepted = la.value()->accept();
  ASSERT_TRUE(accepted.ok()) << accepted.status().message;
  EXPECT_EQ(peer_ip(accepted.value()), "100.64.0.2");
  expect_bytes(dialed->value(), accepted.value(), "ping");
  expect_bytes(accepted.value(), dialed->value(), "pong");
  ::close(dialed->value());
  ::close(accepted.value());

  // Closed listener: the OS refuses within the timeout.
  const auto where = la.value()->local_endpoint();
  la.value()->close();
  std::optional<sdk::Result<int>> refused;
  lab_->run_in(1, [&] { refused.emplace(b->dial(where, std::chrono::seconds(2))); });
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status().code, code(Errc::kUnavailable)) << refused->status().message;
}

TEST_F(TailnetLab, SystemModeWithoutATailnetAddressSaysSo) {
  ASSERT_TRUE(lab_->del_address(1, "100.64.0.2/24"));
  ASSERT_TRUE(lab_->add_address(1, "198.51.100.20/24"));
  CapturingHost host;
  auto t = make_transport(&host, {{"mode", "system"}});
  ASSERT_TRUE(t);
  auto r = listen_in(1, *t, json{{"mode", "system"}}.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message,
            "no tailscale address (100.64.0.0/10) on this host; is tailscaled up?");
  auto wrong = listen_in(0, *t, "{}");
  ASSERT_TRUE(wrong.ok()) << wrong.status().message;
  sdk::ListenSpec spec;
  spec.bind_ip = "100.64.9.9";
  std::optional<ListenResult> not_ours;
  lab_->run_in(0, [&] { not_ours.emplace(t->listen(spec)); });
  ASSERT_TRUE(not_ours);
  EXPECT_EQ(not_ours->status().code, code(Errc::kInvalidArgument));
}

}  // namespace
}  // namespace thrum::test
