#pragma once
/// @file
/// The transport conformance suite: GoogleTest cases that check a transport keeps the contract of
/// transport.hpp. Header-only; needs GoogleTest (`find_package(GTest)`, link GTest::gtest).
///
/// Run it over a built plugin with the installed runner:
///
///     thrum-transport-conformance path/to/libthrum_transport_<id>.so [--options JSON] [--bind IP]
///
/// or from your own test binary, over a transport you construct yourself:
///
///     thrum::sdk::conformance::Target t;
///     t.name = "mine";
///     t.create = [] { return new MyTransport(&my_host); };
///     t.destroy = [](thrum::sdk::ITransport* p) { delete p; };
///     thrum::sdk::conformance::register_tests(t);   // before RUN_ALL_TESTS()
///
/// Every case runs on a worker thread under a watchdog (Target::case_timeout): a transport call
/// that blocks (an accept() that waits for a connection, a configure() that never returns) fails
/// the case with the name of the call instead of hanging the suite. The transport of a case that
/// timed out is leaked, never destroyed under the blocked call, and the suite goes on.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "thrum/sdk/plugin.hpp"

namespace thrum::sdk::conformance {

/// What to test and how to make it.
struct Target {
  /// Test suite name suffix: cases are registered as `Conformance_<name>.<Case>`.
  std::string name = "transport";
  /// The plugin's descriptor, when testing a loaded plugin; nullptr skips the descriptor case.
  const ThrumTransportPluginDescriptor* descriptor = nullptr;
  /// The plugin's file name (for the id check); empty skips that check.
  std::string file_name;
  /// Makes a fresh, unconfigured transport (one per case). Required.
  std::function<ITransport*()> create;
  /// Releases what `create` returned. Required.
  std::function<void(ITransport*)> destroy;
  /// Passed to configure() before each case.
  std::string options_json = "{}";
  /// Used for ListenSpec::bind_ip and AdvertiseSpec::requested_ip.
  std::string bind_ip = "127.0.0.1";
  /// Dial timeout the cases use.
  std::chrono::milliseconds dial_timeout{2000};
  /// How long one case (set-up, body, tear-down) may take before it fails as blocked.
  std::chrono::milliseconds case_timeout{10000};
};

namespace detail {

inline bool wait_readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1 && (p.revents & POLLIN) != 0;
}

inline bool send_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

inline std::string recv_exact(int fd, std::size_t size, std::chrono::milliseconds timeout) {
  std::string out;
  char buf[4096];
  while (out.size() < size && wait_readable(fd, timeout)) {
    const ssize_t n = ::recv(fd, buf, std::min(sizeof buf, size - out.size()), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

/// Runs `fn` on a worker thread and waits at most `timeout`. Returns false when it did not
/// finish in time; the thread is then detached (it may be blocked for ever in plugin code).
template <class F>
bool run_with_watchdog(std::chrono::milliseconds timeout, F fn) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };
  auto shared = std::make_shared<Shared>();
  std::thread worker([shared, fn]() mutable {
    fn();
    std::lock_guard lock(shared->mu);
    shared->done = true;
    shared->cv.notify_all();
  });
  std::unique_lock lock(shared->mu);
  const bool finished = shared->cv.wait_for(lock, timeout, [&] { return shared->done; });
  lock.unlock();
  if (finished)
    worker.join();
  else
    worker.detach();
  return finished;
}

/// Base of every case: a fresh configured transport, released after the case. Members are public
/// so that the case bodies (lambdas) can use them.
class Case : public ::testing::Test {
 public:
  explicit Case(const Target& t) : target_(t) {}

  /// Calls `fn` (one call into the transport) with `what` recorded as the call in progress, so
  /// that a case that blocks can say where.
  template <class F>
  auto call(const char* what, F fn) -> decltype(fn()) {
    struct Restore {
      std::atomic<const char*>& slot;
      const char* before;
      ~Restore() { slot.store(before); }
    } restore{current_call_, current_call_.exchange(what)};
    return fn();
  }
  const char* current_call() const { return current_call_.load(); }

  void SetUp() override {
    guarded("set-up", [this] {
      transport_ =
          call("ThrumTransportPluginDescriptor::create()", [this] { return target_.create(); });
      ASSERT_NE(transport_, nullptr) << "the factory returned null";
      const Status st = call("ITransport::configure()",
                             [this] { return transport_->configure(target_.options_json); });
      ASSERT_TRUE(st.ok()) << "configure(" << target_.options_json << ") failed: " << st.message;
    });
  }
  void TearDown() override {
    if (timed_out_) {
      // A worker may still be inside the transport: leak it rather than destroy it under the
      // blocked call (the process ends soon; the leak is the price of not hanging).
      (void)listener_.release();
      transport_ = nullptr;
      return;
    }
    guarded("tear-down", [this] {
      for (int fd : fds_) ::close(fd);
      fds_.clear();
      call("IListener destructor", [this] { listener_.reset(); });
      if (transport_ != nullptr) {
        ITransport* t = transport_;
        transport_ = nullptr;
        call("ThrumTransportPluginDescriptor::destroy()", [this, t] { target_.destroy(t); });
      }
    });
    if (timed_out_) (void)listener_.release();
  }

  /// Runs one phase of the case under the watchdog; a timeout fails the case naming the call.
  template <class F>
  void guarded(const char* phase, F fn) {
    if (timed_out_) return;
    const bool finished = run_with_watchdog(target_.case_timeout, fn);
    if (!finished) {
      timed_out_ = true;
      ADD_FAILURE() << "timed out after " << target_.case_timeout.count() << " ms in "
                    << current_call() << " (" << phase
                    << "); a transport call must not block (listener fds are non-blocking, "
                       "accept() with nothing pending fails at once)";
    }
  }

  int keep(int fd) {
    fds_.push_back(fd);
    return fd;
  }
  bool has_listener() const {
    return call_const("ITransport::capabilities()",
                      [this] { return transport_->capabilities().provides_listener; });
  }
  /// Listens and advertises; fills listener_ and returns the endpoint to dial.
  Endpoint listen_and_advertise() {
    ListenSpec spec;
    spec.bind_ip = target_.bind_ip;
    spec.options_json = target_.options_json;
    auto l = call("ITransport::listen()", [&] { return transport_->listen(spec); });
    EXPECT_TRUE(l.ok()) << "listen failed: " << l.status().message;
    if (!l.ok()) return {};
    listener_ = std::move(l).value();
    EXPECT_NE(listener_, nullptr);
    if (!listener_) return {};
    AdvertiseSpec a;
    a.requested_ip = target_.bind_ip;
    a.listen_port =
        call("IListener::local_endpoint()", [&] { return listener_->local_endpoint().port; });
    auto ep = call("ITransport::advertise()", [&] { return transport_->advertise(a); });
    EXPECT_TRUE(ep.ok()) << "advertise failed: " << ep.status().message;
    return ep.ok() ? ep.value() : Endpoint{};
  }
  Result<int> accept() {
    return call("IListener::accept()", [&] { return listener_->accept(); });
  }
  Result<int> dial(const Endpoint& ep, std::chrono::milliseconds timeout) {
    return call("ITransport::dial()", [&] { return transport_->dial(ep, timeout); });
  }
  void close_listener() {
    call("IListener::close()", [&] { listener_->close(); });
  }

  const Target& target_;
  ITransport* transport_ = nullptr;
  std::unique_ptr<IListener> listener_;
  std::vector<int> fds_;

 private:
  template <class F>
  auto call_const(const char* what, F fn) const -> decltype(fn()) {
    return const_cast<Case*>(this)->call(what, fn);
  }
  std::atomic<const char*> current_call_{"the case body"};
  bool timed_out_ = false;
};

template <class F>
void add(const Target& t, const char* name, F body) {
  const std::string suite = "Conformance_" + t.name;
  ::testing::RegisterTest(suite.c_str(), name, nullptr, nullptr, __FILE__, __LINE__,
                          [&t, body]() -> ::testing::Test* {
                            struct Impl : Case {
                              Impl(const Target& tt, F b) : Case(tt), b_(b) {}
                              void TestBody() override {
                                guarded("body", [this] { b_(*this); });
                              }
                              F b_;
                            };
                            return new Impl(t, body);
                          });
}

/// The ABI 1.1 profile checks (ITransport::profile()), as cases of their own. A plugin whose
/// descriptor declares ABI 1.0 has no profile() (the host gives it the defaults): skipped.
inline void register_profile_cases(const Target& target) {
  auto profile_of = [](Case& c, TransportProfile& out) {
    const auto* d = c.target_.descriptor;
    if (d != nullptr && d->abi_minor < 1) return false;
    out = c.transport_->profile();
    return true;
  };

  add(target, "ProfileHelpStartsWithASummaryLine",
      [profile_of](Case& c) {
        TransportProfile p;
        if (!profile_of(c, p)) GTEST_SKIP() << "ABI 1.0 plugin: the host uses the default help";
        const std::string first = p.help.substr(0, p.help.find('\n'));
        EXPECT_FALSE(first.empty())
            << "profile().help must start with a one-line summary: it is the transport's entry in "
               "`thrum peer add` without --type";
        EXPECT_TRUE(first.empty() || (first.front() != ' ' && first.back() != ' '))
            << "the summary line must not start or end with spaces: \"" << first << "\"";
        for (char ch : p.help)
          EXPECT_TRUE(ch == '\n' || static_cast<unsigned char>(ch) >= 0x20)
              << "help contains a control character (code " << static_cast<int>(ch) << ")";
        const TransportProfile again = c.transport_->profile();
        EXPECT_EQ(again.help, p.help) << "profile() must return the same value on every call";
      });

  add(target, "ProfileCredentialIsNamedAndItsEnvVariableIsValid", [profile_of](Case& c) {
    TransportProfile p;
    if (!profile_of(c, p)) GTEST_SKIP() << "ABI 1.0 plugin: no credential";
    const CredentialSpec& cred = p.credential;
    if (cred.name.empty()) {
      EXPECT_TRUE(cred.env.empty() && cred.prompt.empty())
          << "a credential without a name: set name (e.g. \"auth key\") or clear env/prompt";
      return;
    }
    for (char ch : cred.name)
      EXPECT_TRUE((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == ' ' || ch == '-')
          << "credential name must be lowercase words (it starts error messages): " << cred.name;
    if (!cred.env.empty()) {
      const char f = cred.env.front();
      EXPECT_TRUE((f >= 'A' && f <= 'Z') || f == '_')
          << "env must start with A-Z or _: " << cred.env;
      for (char ch : cred.env)
        EXPECT_TRUE((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_')
            << "env must be an environment variable name ([A-Z_][A-Z0-9_]*): " << cred.env;
    }
  });

  add(target, "ProfileStateDirIsASafeRelativeName", [profile_of](Case& c) {
    TransportProfile p;
    if (!profile_of(c, p)) GTEST_SKIP() << "ABI 1.0 plugin: the host uses the transport id";
    const std::string& dir = p.state_dir;
    if (dir.empty()) return;  // the default: the transport id
    EXPECT_LE(dir.size(), 64u) << "state_dir is too long: " << dir;
    EXPECT_NE(dir.front(), '.') << "state_dir must not start with '.' (no \"..\", no hidden "
                                   "names): "
                                << dir;
    for (char ch : dir)
      EXPECT_TRUE((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.')
          << "state_dir must be one directory name under .thrum/var/ ([A-Za-z0-9._-], no '/'): "
          << dir;
  });
}

}  // namespace detail

/// Registers the suite's cases for `target`. `target` must outlive RUN_ALL_TESTS().
inline void register_tests(const Target& target) {
  using detail::add;
  using detail::Case;

  add(target, "DescriptorIsSane", [](Case& c) {
    auto& a = c;
    const auto* d = a.target_.descriptor;
    if (d == nullptr) GTEST_SKIP() << "no descriptor (transport constructed directly)";
    EXPECT_GE(d->struct_size, sizeof(ThrumTransportPluginDescriptor));
    EXPECT_EQ(d->abi_major, THRUM_SDK_ABI_MAJOR);
    EXPECT_LE(d->abi_minor, THRUM_SDK_ABI_MINOR);
    ASSERT_NE(d->toolchain_tag, nullptr);
    EXPECT_STREQ(d->toolchain_tag, THRUM_SDK_TOOLCHAIN_TAG);
    ASSERT_NE(d->id, nullptr);
    ASSERT_NE(d->plugin_version, nullptr);
    EXPECT_STRNE(d->plugin_version, "");
    ASSERT_NE(d->sdk_version, nullptr);
    EXPECT_NE(d->create, nullptr);
    EXPECT_NE(d->destroy, nullptr);
    EXPECT_EQ(a.transport_->id(), std::string_view(d->id))
        << "ITransport::id() differs from the descriptor";
    if (!a.target_.file_name.empty()) {
      EXPECT_EQ(a.target_.file_name, "libthrum_transport_" + std::string(d->id) + ".so");
    }
  });

  add(target, "IdIsValidAndCapabilitiesAreStable", [](Case& c) {
    auto& a = c;
    const std::string id(a.transport_->id());
    ASSERT_FALSE(id.empty());
    for (char ch : id)
      EXPECT_TRUE((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_') << id;
    const Capabilities c1 = a.transport_->capabilities();
    for (int i = 0; i < 3; ++i) {
      const Capabilities c2 = a.transport_->capabilities();
      EXPECT_EQ(c1.needs_tls, c2.needs_tls);
      EXPECT_EQ(c1.loopback_only, c2.loopback_only);
      EXPECT_EQ(c1.needs_repo_path, c2.needs_repo_path);
      EXPECT_EQ(c1.needs_address, c2.needs_address);
      EXPECT_EQ(c1.provides_listener, c2.provides_listener);
    }
    EXPECT_EQ(a.transport_->id(), id) << "id() changed between calls";
  });

  add(target, "ConfigureRefusesGarbageWithAMessage", [](Case& c) {
    auto& a = c;
    const Status st = a.call("ITransport::configure()", [&] {
      return a.transport_->configure("{\"thrum_conformance_no_such_option\": 1}");
    });
    if (st.ok())
      GTEST_SKIP() << "transport ignores unknown options (allowed, but refusing them is better)";
    EXPECT_FALSE(st.message.empty()) << "a refusal must say why";
  });

  add(target, "ListenGivesAPollableFd", [](Case& c) {
    auto& a = c;
    if (!a.has_listener()) GTEST_SKIP() << "transport has no listener of its own";
    a.listen_and_advertise();
    ASSERT_TRUE(a.listener_);
    const int fd = a.listener_->fd();
    ASSERT_GE(fd, 0);
    pollfd p{fd, POLLIN, 0};
    ASSERT_GE(::poll(&p, 1, 0), 0);
    EXPECT_EQ(p.revents & POLLNVAL, 0) << "fd() is not a valid descriptor";
    EXPECT_EQ(p.revents & POLLIN, 0) << "readable with nobody connecting";
    auto none = a.accept();
    EXPECT_FALSE(none.ok()) << "accept() with nothing pending must fail, not block";
    EXPECT_NE(a.listener_->local_endpoint().port, 0)
        << "local_endpoint() must report the bound port";
  });

  add(target, "DialAdvertisedEndpointAcceptAndBytesFlowBothWays", [](Case& c) {
    auto& a = c;
    if (!a.has_listener()) GTEST_SKIP() << "transport has no listener of its own";
    const Endpoint ep = a.listen_and_advertise();
    ASSERT_TRUE(a.listener_);
    ASSERT_NE(ep.port, 0);
    auto dialed = a.dial(ep, a.target_.dial_timeout);
    ASSERT_TRUE(dialed.ok()) << "dial(" << ep.ip << ":" << ep.port
                             << ") failed: " << dialed.status().message;
    const int client = a.keep(dialed.value());
    ASSERT_TRUE(detail::wait_readable(a.listener_->fd(), a.target_.dial_timeout))
        << "listener fd never became readable after a dial";
    auto accepted = a.accept();
    ASSERT_TRUE(accepted.ok()) << "accept failed: " << accepted.status().message;
    const int server = a.keep(accepted.value());
    ASSERT_GE(server, 0);

    const std::string ping(100000, 'p');  // larger than one socket buffer write on some systems
    std::string got;
    {
      // Writer and reader at once so that a large payload cannot deadlock on full buffers.
      std::thread writer([&] { EXPECT_TRUE(detail::send_all(client, ping)); });
      got = detail::recv_exact(server, ping.size(), a.target_.dial_timeout);
      writer.join();
    }
    EXPECT_EQ(got.size(), ping.size());
    EXPECT_EQ(got, ping) << "bytes from dialer to acceptor differ";
    ASSERT_TRUE(detail::send_all(server, "pong"));
    EXPECT_EQ(detail::recv_exact(client, 4, a.target_.dial_timeout), "pong")
        << "bytes from acceptor to dialer";
  });

  add(target, "DialToClosedEndpointFailsWithinTimeout", [](Case& c) {
    auto& a = c;
    if (!a.has_listener()) GTEST_SKIP() << "transport has no listener of its own";
    const Endpoint ep = a.listen_and_advertise();
    ASSERT_TRUE(a.listener_);
    a.close_listener();
    const auto timeout = std::chrono::milliseconds(1000);
    const auto start = std::chrono::steady_clock::now();
    auto r = a.dial(ep, timeout);
    const auto took = std::chrono::steady_clock::now() - start;
    if (r.ok()) a.keep(r.value());
    EXPECT_FALSE(r.ok()) << "dial to a closed listener succeeded";
    EXPECT_NE(r.status().code, 0);
    EXPECT_FALSE(r.status().message.empty()) << "a failed dial must say why";
    EXPECT_LT(took, timeout + std::chrono::milliseconds(500)) << "dial ignored its timeout";
  });

  add(target, "ValidateAddressChangeExplainsRejections", [](Case& c) {
    auto& a = c;
    Endpoint from{a.target_.bind_ip, 40000};
    EXPECT_TRUE(a.call("ITransport::validate_address_change()",
                       [&] { return a.transport_->validate_address_change(from, from); })
                    .ok())
        << "no change must be accepted";
    int rejected = 0;
    for (const Endpoint& to : {Endpoint{"203.0.113.77", 40001}, Endpoint{a.target_.bind_ip, 0}}) {
      const Status st = a.call("ITransport::validate_address_change()",
                               [&] { return a.transport_->validate_address_change(from, to); });
      if (st.ok()) continue;
      ++rejected;
      EXPECT_EQ(st.code, static_cast<int>(Errc::kRejected)) << st.message;
      EXPECT_FALSE(st.message.empty()) << "a rejection must name the rule";
    }
    EXPECT_GT(rejected, 0) << "accepted a move to another network and to port 0";
  });

  add(target, "ListenerCloseIsIdempotent", [](Case& c) {
    auto& a = c;
    if (!a.has_listener()) GTEST_SKIP() << "transport has no listener of its own";
    a.listen_and_advertise();
    ASSERT_TRUE(a.listener_);
    a.close_listener();
    EXPECT_EQ(a.listener_->fd(), -1) << "fd() after close()";
    a.close_listener();
    EXPECT_FALSE(a.accept().ok()) << "accept() after close()";
    // And the transport can listen again afterwards (the core rebuilds listeners).
    a.listener_.reset();
    a.listen_and_advertise();
    EXPECT_TRUE(a.listener_);
  });

  add(target, "ResolveAnswersWithoutCrashing", [](Case& c) {
    auto& a = c;
    PeerRecordView peer;
    peer.name = "conformance";
    peer.address = Endpoint{a.target_.bind_ip, 40000};
    peer.transport = std::string(a.transport_->id());
    auto r = a.call("ITransport::resolve()", [&] { return a.transport_->resolve(peer); });
    if (!r.ok()) {
      EXPECT_FALSE(r.status().message.empty()) << "a failed resolve must say why";
    }
  });

  detail::register_profile_cases(target);
}

}  // namespace thrum::sdk::conformance
