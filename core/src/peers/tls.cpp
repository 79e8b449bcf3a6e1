#include "peers/tls.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <array>
#include <boost/asio/ssl/stream_base.hpp>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "thrum/common/fs_util.hpp"
#include "thrum/common/ids.hpp"

namespace thrum::core::tls {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;

namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

std::string hex(const unsigned char* p, unsigned n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

std::string fingerprint_of(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (!cert || X509_digest(cert, EVP_sha256(), md, &n) != 1) return "";
  return hex(md, n);
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return "";
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

/// The fingerprint when `cert_pem` and `key_pem` parse and belong together, else "".
std::string check_pair(const std::string& cert_pem, const std::string& key_pem) {
  BioPtr cb(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  BioPtr kb(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  X509Ptr cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  PkeyPtr key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  if (!cert || !key || X509_check_private_key(cert.get(), key.get()) != 1) return "";
  return fingerprint_of(cert.get());
}

Identity create(const std::string& common_name) {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) throw std::runtime_error("cannot generate a TLS key");
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  std::array<unsigned char, 16> serial{};
  secure_random_bytes(serial.data(), serial.size());
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -24 * 3600);
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), 100 * 365, 0, nullptr);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0)
    throw std::runtime_error("cannot sign the TLS certificate");
  BioPtr cb(BIO_new(BIO_s_mem()));
  BioPtr kb(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(cb.get(), cert.get());
  PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  Identity id;
  id.cert_pem = bio_text(cb.get());
  id.key_pem = bio_text(kb.get());
  id.fingerprint = fingerprint_of(cert.get());
  return id;
}

}  // namespace

Identity load_or_create(const fs::path& dir, const std::string& common_name, std::string* problem) {
  const fs::path cert_path = dir / "cert.pem";
  const fs::path key_path = dir / "key.pem";
  std::error_code ec;
  fs::create_directories(dir, ec);
  ::chmod(dir.c_str(), 0700);
  if (fs::exists(cert_path) || fs::exists(key_path)) {
    Identity id{read_all(cert_path), read_all(key_path), ""};
    id.fingerprint = check_pair(id.cert_pem, id.key_pem);
    if (!id.fingerprint.empty()) return id;
    // Never overwrite what might be recoverable: move the broken pair aside, then make a new one.
    if (problem)
      *problem = "TLS key/certificate in " + dir.string() +
                 " did not load; moved aside and created a new one (peers paired over TLS must "
                 "re-pair)";
    if (fs::exists(cert_path)) move_aside_corrupt(cert_path);
    if (fs::exists(key_path)) move_aside_corrupt(key_path);
  }
  Identity id = create(common_name);
  // Key first: a certificate without its key is useless, a key without a certificate is rebuilt.
  atomic_write_file(key_path, id.key_pem, 0600);
  atomic_write_file(cert_path, id.cert_pem, 0644);
  return id;
}

std::shared_ptr<ssl::context> make_context(const Identity& id, bool server) {
  auto ctx =
      std::make_shared<ssl::context>(server ? ssl::context::tls_server : ssl::context::tls_client);
  SSL_CTX* raw = ctx->native_handle();
  SSL_CTX_set_min_proto_version(raw, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(raw, TLS1_3_VERSION);
  ctx->use_certificate(asio::buffer(id.cert_pem), ssl::context::pem);
  ctx->use_private_key(asio::buffer(id.key_pem), ssl::context::pem);
  // Self-signed on both sides: the chain is not checked here, the fingerprint is checked by the
  // caller against the pin (or bound into the pairing proof).
  ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  ctx->set_verify_callback([](bool, ssl::verify_context&) { return true; });
  if (server) SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(raw, 0);
  return ctx;
}

std::string peer_fingerprint(peerwire::TlsStream& s) {
  X509Ptr cert(SSL_get1_peer_certificate(s.native_handle()));
  return fingerprint_of(cert.get());
}

void LazyIdentity::ensure() {
  if (id_) return;
  std::string problem;
  id_ = load_or_create(dir_, common_name_, &problem);
  if (!problem.empty()) spdlog::warn("{}", problem);
  server_ = make_context(*id_, true);
  client_ = make_context(*id_, false);
  spdlog::info("tls identity ready fingerprint={}", short_fp(id_->fingerprint));
}

std::string short_fp(const std::string& fp) {
  return fp.size() > 16 ? fp.substr(0, 16) : fp;
}

void handshake(peerwire::Socket sock, std::shared_ptr<ssl::context> ctx, bool server,
               std::chrono::milliseconds deadline, HandshakeDone done) {
  auto stream = std::make_shared<std::unique_ptr<peerwire::TlsStream>>(
      std::make_unique<peerwire::TlsStream>(std::move(sock), *ctx));
  auto timer = std::make_shared<asio::steady_timer>((*stream)->get_executor(), deadline);
  auto timed_out = std::make_shared<bool>(false);
  timer->async_wait([stream, timed_out](boost::system::error_code ec) {
    if (ec || !*stream) return;
    *timed_out = true;
    boost::system::error_code ignored;
    peerwire::beast::get_lowest_layer(**stream).close(ignored);
  });
  (*stream)->async_handshake(
      server ? ssl::stream_base::server : ssl::stream_base::client,
      [stream, ctx, timer, timed_out, done = std::move(done)](boost::system::error_code ec) {
        timer->cancel();
        auto s = std::move(*stream);
        if (ec) {
          done(nullptr, "",
               *timed_out ? std::string("TLS handshake timed out")
                          : "TLS handshake failed: " + ec.message());
          return;
        }
        std::string fp = peer_fingerprint(*s);
        done(std::move(s), fp, "");
      });
}

}  // namespace thrum::core::tls
