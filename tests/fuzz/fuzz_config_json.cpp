// .thrum/config.json as a user or an editor could leave it. Invariants: no crash or
// exception from decoding, validate() or any accessor; a refusal says why.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "thrum/common/bounded_json.hpp"
#include "thrum/common/config.hpp"

using thrum::core::Config;
using thrum::core::decode_config;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    std::string error;
    auto doc = decode_config(text, error);
    if (!doc) {
      if (error.empty()) std::abort();
      return 0;
    }
    Config c;
    c.doc() = std::move(*doc);
    for (const auto& e : c.validate())
      if (e.empty()) std::abort();
    (void)c.daemon_id();
    (void)c.repo_name();
    (void)c.hostname();
    (void)c.git_origin_url();
    (void)c.init_at();
    (void)c.ws_port();
    (void)c.peer_port();
    (void)c.max_message_body_bytes();
    (void)c.auto_connect();
    (void)c.pairing_code_length();
    (void)c.peers_name();
    (void)thrum::core::dump_pretty(c.doc());
  } catch (...) {
    std::abort();
  }
  return 0;
}
