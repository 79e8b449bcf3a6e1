// One text frame from a peer: the envelope, then every request decoder over its params and
// every answer decoder over its result (requests and responses), whatever the method says.
// Invariants: no crash, no exception, a refusal always says why.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "peers/protocol.hpp"

namespace p = thrum::core::peers;

namespace {

template <class T>
void check(const p::Decoded<T>& d) {
  if (!d.ok() && d.error().empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto frame = p::decode_frame(text);
    check(frame);
    if (!frame.ok()) return 0;
    const auto& f = frame.value();
    if (f.kind != p::Frame::Kind::kResponse) {
      const p::json& params = f.params;
      check(p::decode_identity(params));
      check(p::decode_deliver(params));
      check(p::decode_receipt(params));
      check(p::decode_presence(params));
      check(p::decode_who_has(params));
      check(p::decode_address_change(params));
      check(p::decode_link_auth(params));
      check(p::decode_pair_hello(params));
      check(p::decode_pair_proof(params));
    } else if (!f.error) {
      const p::json& result = f.result;
      const std::size_t expected = size % 8;
      check(p::decode_deliver_answer(result, expected));
      (void)p::receipt_answer_ok(result, expected);
      check(p::decode_who_has_answer(result));
      check(p::decode_pair_hello_answer(result));
      check(p::decode_pair_proof_answer(result));
      check(p::decode_identity(result));
    }
    (void)p::parse_endpoint(text.substr(0, 64));
  } catch (...) {
    std::abort();  // decoders refuse with a value, never by throwing
  }
  return 0;
}
