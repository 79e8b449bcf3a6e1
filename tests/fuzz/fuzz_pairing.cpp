// The pairing messages (pair.hello, pair.proof and their answers, link.auth) as a hostile
// joiner or listener sends them, before any authentication: the params or result object alone.
// Invariants: no crash, no exception, refusals say why, accepted values are within bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "peers/protocol.hpp"
#include "thrum/common/bounded_json.hpp"

namespace p = thrum::core::peers;

namespace {

template <class T>
void check(const p::Decoded<T>& d) {
  if (!d.ok() && d.error().empty()) std::abort();
}

void bounded(const std::string& s, std::size_t limit) {
  if (s.size() > limit) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto doc = thrum::core::parse_bounded(text, nullptr, thrum::core::kMaxJsonDepth,
                                          p::kMaxPreAuthFrameBytes);
    if (!doc) return 0;
    auto hello = p::decode_pair_hello(*doc);
    check(hello);
    if (hello.ok()) bounded(hello.value().nonce, 1024);
    auto hello_answer = p::decode_pair_hello_answer(*doc);
    check(hello_answer);
    auto proof = p::decode_pair_proof(*doc);
    check(proof);
    if (proof.ok()) bounded(proof.value().identity.repo_path, p::kMaxPathBytes);
    auto proof_answer = p::decode_pair_proof_answer(*doc);
    check(proof_answer);
    if (proof_answer.ok()) bounded(proof_answer.value().identity.name, p::kMaxNameBytes);
    check(p::decode_link_auth(*doc));
  } catch (...) {
    std::abort();
  }
  return 0;
}
