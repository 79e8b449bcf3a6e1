// var/peers.json as a damaged disk or a hostile local process could leave it. Invariants: no
// crash or exception; a refusal says why; a decoded file round-trips through to_json.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "thrum/common/bounded_json.hpp"
#include "thrum/core/peer_registry.hpp"

using thrum::core::decode_peers_file;
using thrum::core::PeerRecord;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    std::string error;
    auto file = decode_peers_file(text, error);
    if (!file) {
      if (error.empty()) std::abort();
      return 0;
    }
    for (const auto& rec : file->peers) {
      const auto j = rec.to_json(true);
      std::string again_error;
      auto back = PeerRecord::decode(j, "peer", again_error);
      if (!back || back->name != rec.name || back->token != rec.token ||
          back->last_seq != rec.last_seq || back->remote_agents != rec.remote_agents)
        std::abort();
    }
    (void)thrum::core::dump_pretty(file->local);
  } catch (...) {
    std::abort();
  }
  return 0;
}
