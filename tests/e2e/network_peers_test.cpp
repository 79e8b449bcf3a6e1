// Peers over the network transport, end to end (issue 5 "Done when", SPEC §7.3, §8): each
// daemon runs inside its own network namespace on a TEST-NET address (198.51.100.0/24,
// 203.0.113.0/24), the namespaces share one bridge, and the links run TLS 1.3 between them.
// Needs root (CI runs as root): without it the tests skip and say why.
//
// Timers are scaled with THRUM_TIME_SCALE=0.05 as in every peer test (peer_env.hpp).
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/peer_env.hpp"
#include "support/helpers.hpp"
#include "support/netns.hpp"

namespace thrum::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kAlphaIp = "198.51.100.10";
constexpr const char* kBetaIp = "198.51.100.20";
constexpr const char* kThirdIp = "198.51.100.30";

/// SHA-256 of the certificate in `pem_path`, lowercase hex ("" when it does not parse).
std::string cert_fingerprint(const fs::path& pem_path) {
  std::string pem = slurp(pem_path);
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  if (!cert) return "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  X509_digest(cert, EVP_sha256(), md, &n);
  X509_free(cert);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

/// alpha (node 0) runs `peer add --type network`, beta (node 1) joins. Node 2 is a third
/// machine on the same LAN.
class NetworkPeers : public PeerTest {
 protected:
  void SetUp() override {
    std::string why;
    if (!netns_available(&why)) GTEST_SKIP() << "network namespaces unavailable: " << why;
    ASSERT_TRUE(lab_->ok()) << lab_->error();
    ASSERT_TRUE(lab_->add_address(0, std::string(kAlphaIp) + "/24"));
    ASSERT_TRUE(lab_->add_address(1, std::string(kBetaIp) + "/24"));
    ASSERT_TRUE(lab_->add_address(2, std::string(kThirdIp) + "/24"));
    patch_config(alpha_, {{"peers", {{"name", "alpha"}}}});
    patch_config(beta_, {{"peers", {{"name", "beta"}}}});
    ASSERT_NO_FATAL_FAILURE(start_in(0, alpha_));
    ASSERT_NO_FATAL_FAILURE(start_in(1, beta_));
    ASSERT_NO_FATAL_FAILURE(alpha_.register_agent("lead", "coordinator"));
    ASSERT_NO_FATAL_FAILURE(beta_.register_agent("reviewer", "reviewer"));
  }

  /// `daemon start` inside node `node`'s namespace (the daemon stays there).
  void start_in(int node, TempRepo& r, std::map<std::string, std::string> extra = {}) {
    PeerTest::start_in(lab_->in(node), r, std::move(extra));
  }
  void restart_in(int node, TempRepo& r) {
    ASSERT_NO_FATAL_FAILURE(r.stop_daemon());
    ASSERT_NO_FATAL_FAILURE(start_in(node, r));
  }

  /// Pairs alpha (listener, on `alpha_ip`) and beta; both must succeed.
  void pair_network(const std::string& alpha_ip = kAlphaIp) {
    // `peer add` without --address must fail, naming the flag; the real one follows.
    auto no_addr = alpha_.thrum({"peer", "add", "--type", "network"});
    ASSERT_NE(no_addr.exit_code, 0);
    EXPECT_NE((no_addr.out + no_addr.err).find("--address"), std::string::npos) << no_addr.err;

    auto add = std::make_unique<StreamingChild>(
        THRUM_TEST_BINARY,
        std::vector<std::string>{"peer", "add", "--type", "network", "--address", alpha_ip},
        alpha_.root(), std::map<std::string, std::string>{});
    auto code = wait_for_peercode(*add);
    ASSERT_TRUE(code.has_value()) << add->out() << add->err();
    remember_secret(code_of(*code));
    peercode_ = *code;
    EXPECT_EQ(code->rfind("alpha:" + alpha_ip + ":", 0), 0u) << *code;
    auto join = beta_.thrum(
        {"peer", "join", "--type", "network", "--peercode", *code, "--address", kBetaIp});
    auto added = add->wait(30s);
    remember_tokens(alpha_);
    remember_tokens(beta_);
    ASSERT_EQ(join.exit_code, 0) << join.out << join.err << "\nadd:\n" << added.out << added.err;
    ASSERT_EQ(added.exit_code, 0) << added.out << added.err;
    EXPECT_NE(join.out.find("Paired with \"alpha\" (" + alpha_ip + ":"), std::string::npos)
        << join.out;
    ASSERT_TRUE(wait_peer_state(beta_, "alpha", "connected")) << peer_state(beta_, "alpha");
  }

  void configure_proxies() {
    auto a = alpha_.thrum({"peer", "configure", "beta", "add-agent", "reviewer"});
    ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
    auto b = beta_.thrum({"peer", "configure", "alpha", "add-agent", "lead"});
    ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  }

  /// lead (alpha) → beta:reviewer; returns once reviewer has it unread.
  void expect_delivery(const std::string& body) {
    auto sent = alpha_.thrum({"send", body, "--to", "@beta:reviewer"}, TempRepo::as("lead"));
    ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err;
    ASSERT_TRUE(wait_until(
        [&] {
          auto box = j(beta_, "reviewer", {"inbox", "--unread", "--limit", "100"});
          for (const auto& m : box["messages"])
            if (m.value("body", "") == body) return true;
          return false;
        },
        20s))
        << "not delivered: " << body << "\nalpha's view: " << peer_state(alpha_, "beta")
        << "\nbeta's view: " << peer_state(beta_, "alpha");
  }

  // Declared first so that it is destroyed last, after the daemons inside it have stopped.
  std::unique_ptr<NetLab> lab_ = std::make_unique<NetLab>(3, "net");
  TempRepo alpha_{"alpha"};
  TempRepo beta_{"beta"};
  TempRepo thief_{"thief"};  ///< node 2, only in the stolen-peers.json test
  std::string peercode_;
};

TEST_F(NetworkPeers, PairOverTlsThenMessagesAndRepliesBothWays) {
  ASSERT_NO_FATAL_FAILURE(pair_network());
  // Each side pinned the certificate the other side actually holds.
  auto a_rec = peer_record(alpha_, "beta");
  auto b_rec = peer_record(beta_, "alpha");
  ASSERT_TRUE(a_rec.is_object() && b_rec.is_object());
  EXPECT_EQ(a_rec.value("remote_cert_sha256", ""), cert_fingerprint(beta_.var() / "tls/cert.pem"));
  EXPECT_EQ(b_rec.value("remote_cert_sha256", ""), cert_fingerprint(alpha_.var() / "tls/cert.pem"));
  EXPECT_NE(cert_fingerprint(alpha_.var() / "tls/cert.pem"), "");
  EXPECT_EQ(fs::status(alpha_.var() / "tls/key.pem").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(b_rec.value("transport", ""), "network");
  EXPECT_EQ(b_rec.value("address", "").rfind(std::string(kAlphaIp) + ":", 0), 0u);

  ASSERT_NO_FATAL_FAILURE(configure_proxies());
  ASSERT_NO_FATAL_FAILURE(expect_delivery("schema v2 is ready"));
  auto box = j(beta_, "reviewer", {"inbox"});
  ASSERT_FALSE(box["messages"].empty());
  EXPECT_EQ(box["messages"][0]["author"], "alpha:lead");
  const std::string id = box["messages"][0]["message_id"];
  auto reply = beta_.thrum({"reply", id, "reviewed, one nit"}, TempRepo::as("reviewer"));
  ASSERT_EQ(reply.exit_code, 0) << reply.out << reply.err;
  ASSERT_TRUE(wait_until(
      [&] {
        auto lead = j(alpha_, "lead", {"inbox", "--unread"});
        for (const auto& m : lead["messages"])
          if (m.value("body", "") == "reviewed, one nit" &&
              m.value("author", "") == "beta:reviewer")
            return true;
        return false;
      },
      20s))
      << peer_state(beta_, "alpha");
}

TEST_F(NetworkPeers, CaptureOnTheWireHoldsNoCodeTokenOrMessageText) {
  const fs::path pcap = alpha_.root().parent_path() / "wire.pcap";
  // tcpdump inside alpha's namespace sees every packet between the two daemons.
  const std::string tcpdump = "/usr/bin/tcpdump";
  ASSERT_TRUE(fs::exists(tcpdump)) << "tcpdump is missing: run scripts/install-deps.sh";
  Child capture(lab_->in(0), tcpdump,
                {"-i", NetLab::kDevice, "-U", "-s", "0", "-w", pcap.string(), "tcp"},
                alpha_.root());
  // tcpdump creates the file before it captures: knock (a TCP SYN from beta's node to a closed
  // port) until a packet shows up in the file, so that nothing of the pairing is missed.
  ASSERT_TRUE(wait_until(
      [&] {
        lab_->run_in(1, [] {
          int fd = ::socket(AF_INET, SOCK_STREAM, 0);
          sockaddr_in a{};
          a.sin_family = AF_INET;
          a.sin_port = htons(9);
          ::inet_pton(AF_INET, kAlphaIp, &a.sin_addr);
          ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);  // refused: RST
          ::close(fd);
        });
        std::error_code ec;
        return fs::file_size(pcap, ec) > 24 && !ec;
      },
      10s))
      << "tcpdump captured nothing";

  ASSERT_NO_FATAL_FAILURE(pair_network());
  ASSERT_NO_FATAL_FAILURE(configure_proxies());
  const std::string secret_text = "the launch code is PURPLE-OTTER-42";
  ASSERT_NO_FATAL_FAILURE(expect_delivery(secret_text));
  std::this_thread::sleep_for(300ms);
  ::kill(capture.pid(), SIGINT);
  capture.wait(10s);

  const std::string wire = slurp(pcap);
  // The capture really holds the pairing and the link (both directions, many packets)...
  ASSERT_GT(wire.size(), 4000u) << "capture too small to mean anything";
  // ...and none of the secrets, nor the message.
  const std::string code = code_of(peercode_);
  EXPECT_EQ(wire.find(code), std::string::npos) << "pairing code on the wire";
  // Tokens never leave peers.json (not even in --json): read it there.
  auto doc = parse_json(slurp(alpha_.var() / "peers.json"));
  ASSERT_TRUE(doc.is_object());
  const std::string tok = doc["peers"][0].value("token", "");
  ASSERT_EQ(tok.size(), 64u);
  EXPECT_EQ(wire.find(tok), std::string::npos) << "token on the wire";
  EXPECT_EQ(wire.find("PURPLE-OTTER"), std::string::npos) << "message text on the wire";
  EXPECT_EQ(wire.find("Bearer"), std::string::npos) << "HTTP upgrade in the clear";
  EXPECT_EQ(wire.find("peer.deliver"), std::string::npos) << "JSON-RPC in the clear";
}

TEST_F(NetworkPeers, ListenerMovesWithinTheSubnetAndTheDialerFollows) {
  ASSERT_NO_FATAL_FAILURE(pair_network());
  ASSERT_NO_FATAL_FAILURE(configure_proxies());
  const std::string before = address_of(beta_, "alpha");
  ASSERT_NO_FATAL_FAILURE(alpha_.stop_daemon());
  // alpha's machine got another address in the same /24 (DHCP renewal, new AP).
  ASSERT_TRUE(lab_->del_address(0, std::string(kAlphaIp) + "/24"));
  ASSERT_TRUE(lab_->add_address(0, "198.51.100.11/24"));
  ASSERT_NO_FATAL_FAILURE(start_in(0, alpha_));
  ASSERT_TRUE(
      wait_until([&] { return address_of(beta_, "alpha").rfind("198.51.100.11:", 0) == 0; }, 20s))
      << "before: " << before << "\nnow: " << peer_state(beta_, "alpha") << "\nalpha log:\n"
      << alpha_.daemon_log();
  ASSERT_TRUE(wait_peer_state(beta_, "alpha", "connected")) << peer_state(beta_, "alpha");
  ASSERT_NO_FATAL_FAILURE(expect_delivery("after the move"));
  EXPECT_NE(slurp(beta_.var() / "daemon.log").find("peer address changed peer=alpha"),
            std::string::npos);
}

TEST_F(NetworkPeers, ListenerAddressChangingWhileRunningIsAnnounced) {
  ASSERT_NO_FATAL_FAILURE(pair_network());
  ASSERT_NO_FATAL_FAILURE(configure_proxies());
  // No restart: the daemon notices by itself that its address left the interface.
  // (Deleting a primary address also drops the secondaries of its subnet, so: delete, then add.)
  ASSERT_TRUE(lab_->del_address(0, std::string(kAlphaIp) + "/24"));
  ASSERT_TRUE(lab_->add_address(0, "198.51.100.12/24"));
  ASSERT_TRUE(
      wait_until([&] { return address_of(beta_, "alpha").rfind("198.51.100.12:", 0) == 0; }, 20s))
      << peer_state(beta_, "alpha") << "\nalpha log:\n"
      << alpha_.daemon_log();
  ASSERT_TRUE(wait_peer_state(beta_, "alpha", "connected")) << peer_state(beta_, "alpha");
  ASSERT_NO_FATAL_FAILURE(expect_delivery("moved while running"));
}

TEST_F(NetworkPeers, ListenerMovingToAnotherSubnetIsRejectedAndNothingChanges) {
  ASSERT_NO_FATAL_FAILURE(pair_network());
  const std::string before = address_of(beta_, "alpha");
  ASSERT_NO_FATAL_FAILURE(alpha_.stop_daemon());
  ASSERT_TRUE(lab_->del_address(0, std::string(kAlphaIp) + "/24"));
  ASSERT_TRUE(lab_->add_address(0, "203.0.113.10/24"));
  // Routes on the shared segment so that the announcement can reach beta at all.
  ASSERT_TRUE(lab_->add_route(0, "198.51.100.0/24"));
  ASSERT_TRUE(lab_->add_route(1, "203.0.113.0/24"));
  ASSERT_NO_FATAL_FAILURE(start_in(0, alpha_));
  ASSERT_TRUE(wait_until(
      [&] {
        auto rec = peer_record(beta_, "alpha");
        return rec.is_object() && rec.value("state", "").rfind("address change rejected: ", 0) == 0;
      },
      20s))
      << peer_state(beta_, "alpha") << "\nalpha log:\n"
      << alpha_.daemon_log();
  auto st = beta_.thrum({"peer", "status"});
  EXPECT_NE(st.out.find("address change rejected: network: same /24 only"), std::string::npos)
      << st.out;
  EXPECT_EQ(address_of(beta_, "alpha"), before) << "a rejected change must not update anything";
  EXPECT_NE(slurp(beta_.var() / "daemon.log").find("rule=\"network: same /24 only"),
            std::string::npos);
}

TEST_F(NetworkPeers, EitherDaemonRestartingOnANewPortIsFollowed) {
  ASSERT_NO_FATAL_FAILURE(pair_network());
  ASSERT_NO_FATAL_FAILURE(configure_proxies());
  // The listener moves to a fixed new port.
  patch_config(alpha_, {{"daemon", {{"peer_port", 47011}}}});
  ASSERT_NO_FATAL_FAILURE(restart_in(0, alpha_));
  ASSERT_TRUE(wait_until([&] { return address_of(beta_, "alpha") == "198.51.100.10:47011"; }, 20s))
      << peer_state(beta_, "alpha");
  ASSERT_TRUE(wait_peer_state(beta_, "alpha", "connected")) << peer_state(beta_, "alpha");
  ASSERT_NO_FATAL_FAILURE(expect_delivery("listener on a new port"));
  // The dialer moves too: the listener learns where to announce its own changes.
  patch_config(beta_, {{"daemon", {{"peer_port", 47022}}}});
  ASSERT_NO_FATAL_FAILURE(restart_in(1, beta_));
  ASSERT_TRUE(wait_until([&] { return address_of(alpha_, "beta") == "198.51.100.20:47022"; }, 20s))
      << peer_state(alpha_, "beta");
  ASSERT_NO_FATAL_FAILURE(expect_delivery("dialer on a new port"));
}

TEST_F(NetworkPeers, WipedPeersJsonEndsInDriftWithTheHintAndDialingStops) {
  patch_config(alpha_, {{"daemon", {{"peer_port", 47033}}}});
  ASSERT_NO_FATAL_FAILURE(restart_in(0, alpha_));
  ASSERT_NO_FATAL_FAILURE(pair_network());
  ASSERT_NO_FATAL_FAILURE(alpha_.stop_daemon());
  fs::remove(alpha_.var() / "peers.json");
  ASSERT_NO_FATAL_FAILURE(start_in(0, alpha_));
  // alpha no longer knows beta; once it listens again (here: to pair anew), beta's next
  // attempt is refused by token and beta stops.
  auto add = std::make_unique<StreamingChild>(
      THRUM_TEST_BINARY,
      std::vector<std::string>{"peer", "add", "--type", "network", "--address", kAlphaIp},
      alpha_.root(), std::map<std::string, std::string>{});
  auto code = wait_for_peercode(*add);
  ASSERT_TRUE(code.has_value()) << add->out() << add->err();
  remember_secret(code_of(*code));
  ASSERT_TRUE(wait_peer_state(beta_, "alpha", "drift_reconcile_failed", 30s))
      << peer_state(beta_, "alpha");
  auto list = beta_.thrum({"peer", "list"});
  EXPECT_NE(list.out.find("  `- drift detected - run: thrum peer join --type repair alpha"),
            std::string::npos)
      << list.out;
  // No more dialing: the count of refused links on alpha stays put.
  auto refusals = [&] {
    std::string log = slurp(alpha_.var() / "daemon.log");
    size_t n = 0;
    for (size_t at = log.find("unknown token"); at != std::string::npos;
         at = log.find("unknown token", at + 1))
      ++n;
    return n;
  };
  const size_t seen = refusals();
  EXPECT_GE(seen, 1u);
  std::this_thread::sleep_for(3s);  // > 20 scaled backoff rounds
  EXPECT_EQ(refusals(), seen) << "beta kept dialing after its token was rejected";
  add->kill(SIGINT);
}

TEST_F(NetworkPeers, RotatedDaemonIdIsRefusedUntilRePaired) {
  // Issue 11 point 5: identity comes from the pairing, not from what a link says. A daemon
  // whose id changed is another daemon until the user re-pairs (a hello once rewrote the id).
  ASSERT_NO_FATAL_FAILURE(pair_network());
  ASSERT_NO_FATAL_FAILURE(configure_proxies());
  const std::string old_id = peer_record(beta_, "alpha").value("daemon_id", "");
  ASSERT_FALSE(old_id.empty());
  ASSERT_NO_FATAL_FAILURE(alpha_.stop_daemon());
  const std::string new_id = "d_rotated0000000000000000a";
  patch_config(alpha_, {{"identity", {{"daemon_id", new_id}}}});
  ASSERT_NO_FATAL_FAILURE(start_in(0, alpha_));
  auto rep = beta_.thrum({"peer", "join", "--type", "repair", "alpha"});
  EXPECT_NE(rep.exit_code, 0) << rep.out << rep.err;
  EXPECT_NE(rep.err.find("another daemon than the one we paired with"), std::string::npos)
      << rep.err;
  EXPECT_NE(rep.err.find("thrum peer add"), std::string::npos) << rep.err;
  EXPECT_EQ(peer_record(beta_, "alpha").value("daemon_id", ""), old_id);
  EXPECT_NE(peer_record(beta_, "alpha").value("state", ""), "connected");
  // Nothing crosses meanwhile: a message to beta stays queued on alpha.
  auto sent =
      alpha_.thrum({"send", "while rotated", "--to", "@beta:reviewer"}, TempRepo::as("lead"));
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err;
  std::this_thread::sleep_for(500ms);
  auto box = j(beta_, "reviewer", {"inbox", "--unread"});
  EXPECT_EQ(box["messages"].size(), 0u) << box.dump(2);
}

TEST_F(NetworkPeers, ThirdMachineWithCopiedPeersJsonButNotTheKeyCannotLink) {
  ASSERT_NO_FATAL_FAILURE(pair_network());
  ASSERT_NO_FATAL_FAILURE(configure_proxies());
  // An attacker on node 2 copies beta's peers.json (token and all) but not var/tls/key.pem.
  TempRepo& thief = thief_;
  fs::copy_file(beta_.var() / "peers.json", thief.var() / "peers.json",
                fs::copy_options::overwrite_existing);
  remember_tokens(thief);
  ASSERT_NO_FATAL_FAILURE(beta_.stop_daemon());
  ASSERT_NO_FATAL_FAILURE(start_in(2, thief));
  // It dials alpha with the stolen token from its own (new) certificate: refused each time.
  ASSERT_TRUE(wait_until(
      [&] {
        return slurp(alpha_.var() / "daemon.log").find("presented a different TLS certificate") !=
               std::string::npos;
      },
      20s))
      << peer_state(thief, "alpha") << "\nalpha log:\n"
      << alpha_.daemon_log();
  auto rec = peer_record(thief, "alpha");
  ASSERT_TRUE(rec.is_object());
  EXPECT_NE(rec.value("state", ""), "connected");
  auto a = peer_record(alpha_, "beta");
  EXPECT_FALSE(a.value("connected", true)) << a.dump();
  // Nothing it sends gets through.
  thief.thrum({"send", "hello from the thief", "--to", "@alpha:lead"}, TempRepo::as("reviewer"));
  std::this_thread::sleep_for(1s);
  auto box = j(alpha_, "lead", {"inbox", "--unread"});
  for (const auto& m : box["messages"]) EXPECT_NE(m.value("body", ""), "hello from the thief");
}

}  // namespace
}  // namespace thrum::test
