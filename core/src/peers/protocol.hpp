#pragma once
// The peer protocol's wire format (SPEC §7.1), decoded: the only place that reads the JSON of a
// peer frame. Every request, every answer and every pairing message becomes a typed struct
// here or is refused with a Refusal naming the field; handlers take these structs, never json.
// Sizes are bounded so that no single frame can make us allocate, store or answer more than a
// small multiple of what it carried.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "peers/decoded.hpp"
#include "thrum/core/json_rpc.hpp"
#include "thrum/sdk/types.hpp"

namespace thrum::core::peers {

using json = nlohmann::json;

// -- limits ---------------------------------------------------------------------------------
/// A WebSocket message on an authenticated link (SPEC §7.1: larger frames close the link).
inline constexpr std::size_t kMaxFrameBytes = 4u << 20;
/// Before a link has authenticated (pairing, link.auth): nothing legitimate is larger.
inline constexpr std::size_t kMaxPreAuthFrameBytes = 64u << 10;
/// Items in one peer.deliver / peer.receipt frame.
inline constexpr std::size_t kMaxItemsPerFrame = 256;
/// Payload bytes the sender packs into one frame (a single larger row goes alone).
inline constexpr std::size_t kMaxBatchBytes = 1u << 20;
/// The largest serialised outbox row that still fits a frame with its envelope. A message whose
/// params encode larger (a 1 MiB body of control characters escapes to 6 MiB) can never be
/// sent: it is refused at send, and failed with its reason if found in the outbox.
inline constexpr std::size_t kMaxRowBytes = kMaxFrameBytes - (64u << 10);
inline constexpr std::size_t kMaxRecipients = 256;
inline constexpr std::size_t kMaxIdBytes = 128;
inline constexpr std::size_t kMaxNameBytes = 128;
inline constexpr std::size_t kMaxPathBytes = 4096;
inline constexpr std::size_t kMaxTextBytes = 2048;
inline constexpr std::size_t kMaxReasonBytes = 512;
inline constexpr std::size_t kMaxPresenceAgents = 4096;

bool is_agent_name(std::string_view s);
/// True when `s` holds a control character (C0, DEL): refused in anything we show or log.
bool has_control_chars(std::string_view s);

// -- envelope -------------------------------------------------------------------------------
/// One JSON-RPC frame from a peer. Ids on peer links are integers (we send nothing else).
struct Frame {
  enum class Kind { kRequest, kNotification, kResponse };
  Kind kind = Kind::kRequest;
  std::string method;
  int64_t id = 0;
  json params = json::object();     ///< requests: moved out of the parsed document
  json result;                      ///< responses without an error: moved out
  std::optional<rpc::Error> error;  ///< responses: typed; a malformed error becomes a synthetic one
};
/// Parses and checks one text frame (depth-bounded). A response whose error object is malformed
/// still decodes (with a synthetic -32603 error) so that the pending call is answered.
Decoded<Frame> decode_frame(std::string_view text);

// -- identity (peer.hello / peer.repair params and answers, pairing) -------------------------
struct Identity {
  std::string daemon_id, name, repo_name, hostname, repo_path, git_origin_url, address;
};
Decoded<Identity> decode_identity(const json& j, std::string where = "identity");
json to_json(const Identity& id);

// -- peer.deliver ---------------------------------------------------------------------------
struct DeliverItem {
  std::string message_id;
  std::string author;
  std::vector<std::string> to;  ///< agent names, '@' stripped
  bool broadcast = false;
  std::string body;
  std::string format = "markdown";
  std::string created_at;
  std::optional<std::string> reply_to;
};
struct DeliverRequest {
  bool batched = true;  ///< {"items": [...]}; false for the old one-message-per-request form
  std::vector<Decoded<DeliverItem>> items;
};
/// Frame-level refusals: `items` not an array, more than kMaxItemsPerFrame. A bad item is
/// refused alone (its Decoded holds the reason) so its neighbours are still delivered.
Decoded<DeliverRequest> decode_deliver(const json& params);

struct DeliverOutcome {
  std::string message_id;  ///< the peer's id for it, when stored
  std::string refused;     ///< why not, when refused (control characters removed)
};
/// `{"results": [...]}` with exactly `expected` entries, each {message_id} or {refused}.
Decoded<std::vector<DeliverOutcome>> decode_deliver_answer(const json& result,
                                                           std::size_t expected);

// -- peer.receipt ---------------------------------------------------------------------------
struct Receipt {
  std::string message_id;  ///< our id (the peer's remote id for it)
  std::string reader;      ///< the agent over there who read it
  std::string read_at;     ///< empty when the peer gave none
};
struct ReceiptRequest {
  bool batched = true;
  std::vector<Decoded<Receipt>> items;
};
Decoded<ReceiptRequest> decode_receipt(const json& params);
/// True when a receipt answer acknowledges `expected` receipts.
bool receipt_answer_ok(const json& result, std::size_t expected);

// -- peer.presence, peer.who_has, peer.address_changed --------------------------------------
struct PresenceAgent {
  std::string name, status, role;
};
Decoded<std::vector<PresenceAgent>> decode_presence(const json& params);
Decoded<std::string> decode_who_has(const json& params);
Decoded<std::vector<std::string>> decode_who_has_answer(const json& result);
Decoded<sdk::Endpoint> decode_address_change(const json& params);

// -- link authentication and pairing --------------------------------------------------------
/// `link.auth {proof}`: the initiator's proof, the first frame on a new link.
Decoded<std::string> decode_link_auth(const json& params);

struct PairHello {
  std::string daemon_id, nonce, transport;
};
Decoded<PairHello> decode_pair_hello(const json& params);
struct PairHelloAnswer {
  std::string nonce, daemon_id, cert_sha256;
};
Decoded<PairHelloAnswer> decode_pair_hello_answer(const json& result);
struct PairProof {
  std::string proof;
  Identity identity;
};
Decoded<PairProof> decode_pair_proof(const json& params);
struct PairProofAnswer {
  std::string proof, token;
  Identity identity;
};
Decoded<PairProofAnswer> decode_pair_proof_answer(const json& result);

/// "ip:port" → Endpoint; nullopt unless the port is 1..65535 and the ip part is not empty.
std::optional<sdk::Endpoint> parse_endpoint(std::string_view text);
std::string endpoint_text(const sdk::Endpoint& e);

}  // namespace thrum::core::peers
