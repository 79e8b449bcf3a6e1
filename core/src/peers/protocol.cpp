#include "peers/protocol.hpp"

#include "peers/fields.hpp"
#include "thrum/common/bounded_json.hpp"

namespace thrum::core::peers {

namespace {

constexpr std::size_t kMaxMethodBytes = 64;
constexpr std::size_t kMaxErrorMessageBytes = 4096;

/// A string the peer sent that we may show or log: no control characters.
bool plain(Fields& f, const std::string& value, std::string_view key) {
  if (!has_control_chars(value)) return true;
  f.fail(std::string(key) + " must not contain control characters");
  return false;
}

std::string strip_control(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return s;
}

Decoded<DeliverItem> decode_deliver_item(const json& d, std::string where) {
  Fields f(d, std::move(where));
  DeliverItem it;
  it.message_id = f.str("message_id", kMaxIdBytes);
  if (f.ok() && !is_id_token(it.message_id, kMaxIdBytes)) f.fail("message_id is not an id");
  it.author = f.str("author", 64);
  if (f.ok() && !is_agent_name(it.author)) f.fail("author is not a valid agent name");
  auto to = f.str_list("to", kMaxRecipients, 65);
  it.broadcast = f.boolean_or("broadcast", false);
  it.body = f.str_or("body", kMaxFrameBytes);
  it.format = f.str_or("format", 16, "markdown");
  it.created_at = f.str_or("created_at", 64);
  it.reply_to = f.opt_str("reply_to", kMaxIdBytes);
  if (!f.ok()) return Refusal{f.error()};
  for (auto& t : to) {
    if (!t.empty() && t.front() == '@') t.erase(0, 1);
    if (!is_agent_name(t)) return Refusal{f.path("to") + ": invalid agent name"};
    it.to.push_back(std::move(t));
  }
  if (!it.broadcast && it.to.empty()) return Refusal{f.path("to") + ": no recipient"};
  if (it.body.empty()) return Refusal{f.path("body") + ": the message is empty"};
  if (it.format != "markdown" && it.format != "plain" && it.format != "json")
    return Refusal{f.path("format") + ": must be markdown, plain or json"};
  if (it.reply_to && !is_id_token(*it.reply_to, kMaxIdBytes))
    return Refusal{f.path("reply_to") + ": is not an id"};
  if (has_control_chars(it.created_at)) return Refusal{f.path("created_at") + ": not a time"};
  return it;
}

Decoded<Receipt> decode_receipt_item(const json& r, std::string where) {
  Fields f(r, std::move(where));
  Receipt rc;
  rc.message_id = f.str("message_id", kMaxIdBytes);
  rc.reader = f.str("reader", 64);
  rc.read_at = f.str_or("read_at", 64);
  if (!f.ok()) return Refusal{f.error()};
  if (!is_id_token(rc.message_id, kMaxIdBytes))
    return Refusal{f.path("message_id") + ": not an id"};
  if (!is_agent_name(rc.reader)) return Refusal{f.path("reader") + ": invalid agent name"};
  if (has_control_chars(rc.read_at)) return Refusal{f.path("read_at") + ": not a time"};
  return rc;
}

}  // namespace

bool is_agent_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  return true;
}

bool has_control_chars(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  return false;
}

Decoded<Frame> decode_frame(std::string_view text) {
  JsonRefusal why;
  auto doc = parse_bounded(text, &why, kMaxJsonDepth, kMaxFrameBytes);
  if (!doc) return Refusal{"frame refused: " + why.message};
  if (!doc->is_object()) return Refusal{"frame refused: not a JSON-RPC object"};
  Frame fr;
  auto mit = doc->find("method");
  auto iit = doc->find("id");
  const bool has_id = iit != doc->end() && !iit->is_null();
  if (has_id && (!iit->is_number_integer() ||
                 (iit->is_number_unsigned() && iit->get<uint64_t>() > INT64_MAX)))
    return Refusal{"frame refused: id must be an integer"};
  if (has_id) fr.id = iit->get<int64_t>();
  if (mit != doc->end()) {
    if (!mit->is_string() || mit->get_ref<const std::string&>().empty() ||
        mit->get_ref<const std::string&>().size() > kMaxMethodBytes)
      return Refusal{"frame refused: method must be a short string"};
    fr.method = mit->get<std::string>();
    fr.kind = has_id ? Frame::Kind::kRequest : Frame::Kind::kNotification;
    auto pit = doc->find("params");
    if (pit != doc->end() && !pit->is_null()) {
      if (!pit->is_object()) return Refusal{"frame refused: params must be an object"};
      fr.params = std::move(*pit);
    }
    return fr;
  }
  if (!has_id) return Refusal{"frame refused: neither a request nor a response"};
  fr.kind = Frame::Kind::kResponse;
  auto eit = doc->find("error");
  if (eit != doc->end() && !eit->is_null()) {
    rpc::Error e{rpc::kInternalError, "malformed error answer from the peer", nullptr};
    if (eit->is_object()) {
      auto c = eit->find("code");
      auto m = eit->find("message");
      if (c != eit->end() && c->is_number_integer() && !c->is_number_unsigned() &&
          c->get<int64_t>() >= INT32_MIN && c->get<int64_t>() <= INT32_MAX && m != eit->end() &&
          m->is_string() && m->get_ref<const std::string&>().size() <= kMaxErrorMessageBytes) {
        e.code = static_cast<int>(c->get<int64_t>());
        e.message = strip_control(m->get<std::string>());
      }
    }
    fr.error = std::move(e);
    return fr;
  }
  auto rit = doc->find("result");
  if (rit != doc->end()) fr.result = std::move(*rit);
  return fr;
}

Decoded<Identity> decode_identity(const json& j, std::string where) {
  Fields f(j, std::move(where));
  Identity id;
  id.daemon_id = f.str_or("daemon_id", kMaxIdBytes);
  id.name = f.str_or("name", kMaxNameBytes);
  id.repo_name = f.str_or("repo_name", kMaxNameBytes * 2);
  id.hostname = f.str_or("hostname", 255);
  id.repo_path = f.str_or("repo_path", kMaxPathBytes);
  id.git_origin_url = f.str_or("git_origin_url", kMaxTextBytes);
  id.address = f.str_or("address", 128);
  if (f.ok() && !id.daemon_id.empty() && !is_id_token(id.daemon_id, kMaxIdBytes))
    f.fail("daemon_id is not an id");
  for (auto [v, k] : {std::pair{&id.name, "name"},
                      {&id.repo_name, "repo_name"},
                      {&id.hostname, "hostname"},
                      {&id.repo_path, "repo_path"},
                      {&id.git_origin_url, "git_origin_url"},
                      {&id.address, "address"}})
    if (f.ok()) plain(f, *v, k);
  if (!f.ok()) return Refusal{f.error()};
  return id;
}

json to_json(const Identity& id) {
  return {{"daemon_id", id.daemon_id}, {"name", id.name},
          {"repo_name", id.repo_name}, {"hostname", id.hostname},
          {"repo_path", id.repo_path}, {"git_origin_url", id.git_origin_url},
          {"address", id.address}};
}

Decoded<DeliverRequest> decode_deliver(const json& params) {
  DeliverRequest req;
  auto items = params.find("items");
  if (items == params.end()) {
    // The old form: the params are one message, answered in the single form.
    req.batched = false;
    req.items.push_back(decode_deliver_item(params, "params"));
    return req;
  }
  Fields f(params, "params");
  const json* arr = f.array("items", kMaxItemsPerFrame);
  if (!arr) return Refusal{f.error()};
  req.items.reserve(arr->size());
  for (std::size_t i = 0; i < arr->size(); ++i)
    req.items.push_back(decode_deliver_item((*arr)[i], "items[" + std::to_string(i) + "]"));
  return req;
}

Decoded<std::vector<DeliverOutcome>> decode_deliver_answer(const json& result,
                                                           std::size_t expected) {
  Fields f(result, "answer");
  const json* arr = f.array("results", kMaxItemsPerFrame);
  if (!arr) return Refusal{f.error()};
  if (arr->size() != expected)
    return Refusal{"answer: " + std::to_string(arr->size()) + " results for " +
                   std::to_string(expected) + " messages"};
  std::vector<DeliverOutcome> out;
  out.reserve(expected);
  for (std::size_t i = 0; i < arr->size(); ++i) {
    Fields r((*arr)[i], "results[" + std::to_string(i) + "]");
    DeliverOutcome o;
    o.message_id = r.str_or("message_id", kMaxIdBytes);
    auto refused = r.opt_str("refused", kMaxTextBytes);
    if (!r.ok()) return Refusal{r.error()};
    if (refused) {
      o.refused = strip_control(refused->substr(0, kMaxReasonBytes));
      if (o.refused.empty()) o.refused = "refused by the peer";
      o.message_id.clear();
    } else if (!is_id_token(o.message_id, kMaxIdBytes)) {
      return Refusal{r.path("message_id") + ": not an id"};
    }
    out.push_back(std::move(o));
  }
  return out;
}

Decoded<ReceiptRequest> decode_receipt(const json& params) {
  ReceiptRequest req;
  if (params.find("items") == params.end()) {
    req.batched = false;
    req.items.push_back(decode_receipt_item(params, "params"));
    return req;
  }
  Fields f(params, "params");
  const json* arr = f.array("items", kMaxItemsPerFrame);
  if (!arr) return Refusal{f.error()};
  for (std::size_t i = 0; i < arr->size(); ++i)
    req.items.push_back(decode_receipt_item((*arr)[i], "items[" + std::to_string(i) + "]"));
  return req;
}

bool receipt_answer_ok(const json& result, std::size_t expected) {
  if (!result.is_object()) return false;
  auto r = result.find("results");
  return r != result.end() && r->is_array() && r->size() == expected;
}

Decoded<std::vector<PresenceAgent>> decode_presence(const json& params) {
  Fields f(params, "params");
  const json* arr = f.array("agents", kMaxPresenceAgents);
  if (!arr) return Refusal{f.error()};
  std::vector<PresenceAgent> out;
  out.reserve(arr->size());
  for (std::size_t i = 0; i < arr->size(); ++i) {
    Fields a((*arr)[i], "agents[" + std::to_string(i) + "]");
    PresenceAgent p;
    p.name = a.str("name", 64);
    p.status = a.str_or("status", 16, "unknown");
    p.role = a.str_or("role", 64);
    if (!a.ok()) return Refusal{a.error()};
    if (!is_agent_name(p.name)) return Refusal{a.path("name") + ": invalid agent name"};
    if (p.status != "active" && p.status != "offline") p.status = "unknown";
    if (has_control_chars(p.role)) p.role = strip_control(p.role);
    out.push_back(std::move(p));
  }
  return out;
}

Decoded<std::string> decode_who_has(const json& params) {
  Fields f(params, "params");
  std::string file = f.str("file", kMaxPathBytes);
  if (!f.ok()) return Refusal{f.error()};
  if (has_control_chars(file)) return Refusal{"params.file: not a path"};
  return file;
}

Decoded<std::vector<std::string>> decode_who_has_answer(const json& result) {
  Fields f(result, "answer");
  auto agents = f.str_list("agents", kMaxPresenceAgents, 64);
  if (!f.ok()) return Refusal{f.error()};
  for (const auto& a : agents)
    if (!is_agent_name(a)) return Refusal{"answer.agents: invalid agent name"};
  return agents;
}

Decoded<sdk::Endpoint> decode_address_change(const json& params) {
  Fields f(params, "params");
  sdk::Endpoint e;
  e.ip = f.str("new_ip", 64);
  e.port = static_cast<std::uint16_t>(f.integer("new_port", 1, 65535));
  if (!f.ok()) return Refusal{"new_ip and new_port (1..65535) are required: " + f.error()};
  if (has_control_chars(e.ip)) return Refusal{"params.new_ip: not an address"};
  return e;
}

Decoded<std::string> decode_link_auth(const json& params) {
  Fields f(params, "params");
  std::string proof = f.str("proof", 64);
  if (!f.ok()) return Refusal{f.error()};
  if (!is_hex(proof, 64)) return Refusal{"params.proof: not a proof"};
  return proof;
}

Decoded<PairHello> decode_pair_hello(const json& params) {
  Fields f(params, "params");
  PairHello h;
  h.daemon_id = f.str("daemon_id", kMaxIdBytes);
  h.nonce = f.str("nonce", 64);
  h.transport = f.str("transport", 64);
  if (!f.ok()) return Refusal{f.error()};
  if (!is_id_token(h.daemon_id, kMaxIdBytes)) return Refusal{"params.daemon_id: not an id"};
  if (!is_hex(h.nonce, 64)) return Refusal{"params.nonce: not a nonce"};
  if (!is_id_token(h.transport, 64)) return Refusal{"params.transport: not a transport id"};
  return h;
}

Decoded<PairHelloAnswer> decode_pair_hello_answer(const json& result) {
  Fields f(result, "answer");
  PairHelloAnswer a;
  a.nonce = f.str("nonce", 64);
  a.daemon_id = f.str("daemon_id", kMaxIdBytes);
  a.cert_sha256 = f.str_or("cert_sha256", 64);
  if (!f.ok()) return Refusal{f.error()};
  if (!is_hex(a.nonce, 64)) return Refusal{"answer.nonce: not a nonce"};
  if (!is_id_token(a.daemon_id, kMaxIdBytes)) return Refusal{"answer.daemon_id: not an id"};
  if (!a.cert_sha256.empty() && !is_hex(a.cert_sha256, 64))
    return Refusal{"answer.cert_sha256: not a fingerprint"};
  return a;
}

Decoded<PairProof> decode_pair_proof(const json& params) {
  Fields f(params, "params");
  PairProof p;
  p.proof = f.str("proof", 64);
  const json* id = f.object("identity");
  if (!f.ok()) return Refusal{f.error()};
  if (!is_hex(p.proof, 64)) return Refusal{"params.proof: not a proof"};
  if (id) {
    auto d = decode_identity(*id, "params.identity");
    if (!d) return Refusal{d.error()};
    p.identity = std::move(d).value();
  }
  return p;
}

Decoded<PairProofAnswer> decode_pair_proof_answer(const json& result) {
  Fields f(result, "answer");
  PairProofAnswer a;
  a.proof = f.str("proof", 64);
  a.token = f.str("token", 64);
  const json* id = f.object("identity");
  if (!f.ok()) return Refusal{f.error()};
  if (!is_hex(a.proof, 64)) return Refusal{"answer.proof: not a proof"};
  if (!is_hex(a.token, 64)) return Refusal{"answer.token: not a token"};
  if (id) {
    auto d = decode_identity(*id, "answer.identity");
    if (!d) return Refusal{d.error()};
    a.identity = std::move(d).value();
  }
  return a;
}

std::optional<sdk::Endpoint> parse_endpoint(std::string_view text) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= text.size())
    return std::nullopt;
  std::string_view port = text.substr(colon + 1);
  if (port.size() > 5) return std::nullopt;
  long p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    p = p * 10 + (c - '0');
  }
  if (p < 1 || p > 65535) return std::nullopt;
  return sdk::Endpoint{std::string(text.substr(0, colon)), static_cast<std::uint16_t>(p)};
}

std::string endpoint_text(const sdk::Endpoint& e) {
  return e.ip + ":" + std::to_string(e.port);
}

}  // namespace thrum::core::peers
