#pragma once
// Internal to the core (includes Asio SSL): the daemon's TLS identity and the handshakes that
// wrap a peer connection for transports whose capabilities ask for TLS (SPEC §8 network).
//
// Trust model: every daemon has one self-signed certificate (var/tls/cert.pem, key 0600). Nobody
// checks names or chains; instead the SHA-256 fingerprint of the other side's certificate is
// bound into the pairing proof (so a man in the middle cannot pair) and pinned in peers.json
// afterwards (remote_cert_sha256), so a copied token without the key cannot link.

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "peers/peer_link.hpp"

namespace thrum::core::tls {

/// The daemon's certificate and key, created on first use.
struct Identity {
  std::string cert_pem;
  std::string key_pem;
  std::string fingerprint;  ///< lowercase hex SHA-256 of the certificate (DER)
};

/// Loads `dir/cert.pem` + `dir/key.pem`, or creates them (EC P-256, self-signed, key 0600, dir
/// 0700; both written atomically). A pair that does not load is moved aside and replaced, with
/// the reason in `problem`. Throws std::runtime_error when nothing can be written.
Identity load_or_create(const std::filesystem::path& dir, const std::string& common_name,
                        std::string* problem = nullptr);

/// A TLS 1.3-only context presenting `id` and asking the other side for its certificate
/// (accepted whatever it is: the caller pins it by fingerprint after the handshake).
std::shared_ptr<boost::asio::ssl::context> make_context(const Identity& id, bool server);

/// Fingerprint of the certificate the other side presented; "" when none.
std::string peer_fingerprint(peerwire::TlsStream& s);

/// Short form for logs: the first 16 hex digits.
std::string short_fp(const std::string& fp);

using HandshakeDone = std::function<void(std::unique_ptr<peerwire::TlsStream>,
                                         std::string fingerprint, std::string error)>;

/// The daemon's TLS identity and contexts, made on first use (a daemon that only pairs over
/// loopback never makes a key). Loop thread only.
class LazyIdentity {
 public:
  LazyIdentity(std::filesystem::path dir, std::string common_name)
      : dir_(std::move(dir)), common_name_(std::move(common_name)) {}
  const std::string& fingerprint() {
    ensure();
    return id_->fingerprint;
  }
  std::shared_ptr<boost::asio::ssl::context> server() {
    ensure();
    return server_;
  }
  std::shared_ptr<boost::asio::ssl::context> client() {
    ensure();
    return client_;
  }

 private:
  void ensure();
  std::filesystem::path dir_;
  std::string common_name_;
  std::optional<Identity> id_;
  std::shared_ptr<boost::asio::ssl::context> server_, client_;
};

/// Runs the TLS handshake on `sock` (client or server side) with a deadline; `done` gets the
/// stream and the other side's fingerprint, or an error.
void handshake(peerwire::Socket sock, std::shared_ptr<boost::asio::ssl::context> ctx, bool server,
               std::chrono::milliseconds deadline, HandshakeDone done);

}  // namespace thrum::core::tls
