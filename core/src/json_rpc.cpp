#include "thrum/core/json_rpc.hpp"

#include <limits>

#include <spdlog/spdlog.h>

#include "thrum/common/bounded_json.hpp"
#include "thrum/core/incidents.hpp"
#include "thrum/core/log_throttle.hpp"

namespace thrum::core::rpc {

namespace {

/// The member `key` of an object, or nullptr (also when `p` is not an object at all).
const json* member(const json& p, const char* key) {
  if (!p.is_object()) return nullptr;
  auto it = p.find(key);
  if (it == p.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace

std::string Params::str(const char* key) const {
  const json* v = member(p_, key);
  if (!v) fail_params(std::string(key) + " is required");
  if (!v->is_string()) fail_params(std::string(key) + " must be a string");
  const auto& s = v->get_ref<const std::string&>();
  if (s.empty()) fail_params(std::string(key) + " is required");
  return s;
}

std::optional<std::string> Params::opt_str(const char* key) const {
  const json* v = member(p_, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail_params(std::string(key) + " must be a string");
  return v->get_ref<const std::string&>();
}

std::optional<int64_t> Params::opt_int(const char* key) const {
  const json* v = member(p_, key);
  if (!v) return std::nullopt;
  if (v->is_number_unsigned()) {
    // The parser stores every non-negative integer as unsigned: only the value decides.
    const auto u = v->get_ref<const json::number_unsigned_t&>();
    if (u > static_cast<json::number_unsigned_t>(std::numeric_limits<int64_t>::max()))
      fail_params(std::string(key) + " is out of range");
    return static_cast<int64_t>(u);
  }
  if (!v->is_number_integer()) fail_params(std::string(key) + " must be an integer");
  return v->get_ref<const json::number_integer_t&>();
}

bool Params::flag(const char* key, bool def) const {
  const json* v = member(p_, key);
  if (!v) return def;
  if (!v->is_boolean()) fail_params(std::string(key) + " must be true or false");
  return v->get_ref<const json::boolean_t&>();
}

std::vector<std::string> Params::str_list(const char* key) const {
  std::vector<std::string> out;
  const json* v = member(p_, key);
  if (!v) return out;
  if (v->is_string()) {
    out.push_back(v->get_ref<const std::string&>());
    return out;
  }
  if (!v->is_array()) fail_params(std::string(key) + " must be a string or an array of strings");
  for (const auto& e : *v) {
    if (!e.is_string()) fail_params(std::string(key) + " must contain only strings");
    out.push_back(e.get_ref<const std::string&>());
  }
  return out;
}

void Dispatcher::add(std::string method, Handler handler, Scope scope) {
  handlers_[std::move(method)] = Entry{std::move(handler), scope};
}

std::vector<std::string> Dispatcher::methods() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : handlers_) out.push_back(k);
  return out;
}

std::string make_response(const json& id, const Outcome& outcome, bool include_id) {
  if (outcome.ok()) {
    // Written out rather than built as a document: that would copy the whole result. Same
    // bytes as dumping {"id", "jsonrpc", "result"} (object keys are sorted).
    std::string out = "{";
    if (include_id) {
      out += "\"id\":";
      append_compact(out, id);
      out += ',';
    }
    out += "\"jsonrpc\":\"2.0\",\"result\":";
    append_compact(out, outcome.result());
    out += '}';
    return out;
  }
  json doc = {{"jsonrpc", "2.0"}};
  {
    json err = {{"code", outcome.error().code}, {"message", outcome.error().message}};
    if (!outcome.error().data.is_null()) err["data"] = outcome.error().data;
    doc["error"] = std::move(err);
  }
  if (include_id) doc["id"] = id;
  return dump_compact(doc);
}

std::string make_notification(std::string_view method, const json& params) {
  // Same bytes as dumping {"jsonrpc", "method", "params"}, without copying params.
  std::string out = "{\"jsonrpc\":\"2.0\",\"method\":";
  append_json_string(out, method);
  out += ",\"params\":";
  append_compact(out, params);
  out += '}';
  return out;
}

namespace {

LogThrottle& handler_log_throttle() {
  static LogThrottle t;
  return t;
}

/// Counts an escaped exception and logs it at most once per window (the count says how many).
void report_handler_exception(const std::string& method, const char* what) {
  count_incident(Incident::kHandlerException);
  if (auto n = handler_log_throttle().admit())
    spdlog::error("rpc handler failed method={} error=\"{}\" occurrences={}", method, what, n);
}

/// A method name fit to quote in an error message: the start of it only.
std::string quoted_method(const std::string& method) {
  constexpr std::size_t kMax = 128;
  if (method.size() <= kMax) return method;
  return method.substr(0, kMax) + "...";
}

/// Wraps `inner` so that it runs at most once and nothing it throws escapes.
Respond guard_respond(Respond inner, std::shared_ptr<bool> answered, const std::string& method) {
  return [inner = std::move(inner), answered = std::move(answered), method](Outcome o) {
    if (*answered) {
      spdlog::warn("rpc handler answered twice method={}; the second answer is dropped", method);
      return;
    }
    *answered = true;
    try {
      inner(std::move(o));
    } catch (const std::exception& e) {
      report_handler_exception(method, e.what());
    } catch (...) {
      report_handler_exception(method, "non-standard exception");
    }
  };
}

/// Runs a handler: its synchronous refusal (Failure) becomes the answer; anything else it
/// throws is answered -32603 (unless it already answered) and counted.
void run_handler(const Handler& handler, const std::string& method, const json& params,
                 const CallContext& ctx, Respond respond_raw) {
  auto answered = std::make_shared<bool>(false);
  Respond respond = guard_respond(std::move(respond_raw), answered, method);
  try {
    handler(params, ctx, respond);
  } catch (const Failure& f) {
    if (!*answered) respond(Error{f.code, f.what(), nullptr});
  } catch (const nlohmann::json::exception& e) {
    // A handler read a param with the wrong type without checking: the caller's input, but
    // the handler's bug too, so it is counted.
    report_handler_exception(method, e.what());
    if (!*answered)
      respond(Error{kInvalidParams, std::string("Invalid params: ") + e.what(), nullptr});
  } catch (const std::exception& e) {
    report_handler_exception(method, e.what());
    if (!*answered)
      respond(Error{kInternalError, "Internal error: " + std::string(e.what()), nullptr});
  } catch (...) {
    report_handler_exception(method, "non-standard exception");
    if (!*answered) respond(Error{kInternalError, "Internal error", nullptr});
  }
}

/// The envelope's id, decoded: only a string (bounded), an integer or null. Anything else is
/// refused without being copied.
struct DecodedId {
  json id = nullptr;
  bool present = false;
  bool valid = true;
};

DecodedId decode_id(const json& req) {
  DecodedId out;
  auto it = req.find("id");
  if (it == req.end()) return out;
  out.present = true;
  if (it->is_null()) return out;
  if (it->is_string() && it->get_ref<const std::string&>().size() <= Dispatcher::kMaxIdBytes) {
    out.id = it->get_ref<const std::string&>();
  } else if (it->is_number_integer()) {
    out.id = *it;  // a scalar: copying it is cheap and bounded
  } else {
    out = DecodedId{nullptr, false, false};
  }
  return out;
}

std::string parse_error_message(const JsonRefusal& why) {
  switch (why.kind) {
    case JsonRefusal::Kind::kTooDeep:
      return "Parse error: the request nests deeper than " + std::to_string(kMaxJsonDepth) +
             " levels";
    case JsonRefusal::Kind::kTooLarge:
      return "Parse error: the request is larger than " +
             std::to_string(Dispatcher::kMaxRequestBytes) + " bytes";
    case JsonRefusal::Kind::kSyntax:
      break;
  }
  return "Parse error: the request is not valid JSON (" + why.message + ")";
}

}  // namespace

void Dispatcher::call(const std::string& method, const json& params, const CallContext& ctx,
                      Respond respond) const {
  auto it = handlers_.find(method);
  if (it == handlers_.end()) {
    try {
      respond(Error{kMethodNotFound, "method '" + quoted_method(method) + "' is not registered",
                    nullptr});
    } catch (...) {
      report_handler_exception(method, "respond callback threw");
    }
    return;
  }
  run_handler(it->second.handler, method, params, ctx, std::move(respond));
}

void Dispatcher::handle(std::string_view text, const CallContext& ctx,
                        const std::function<void(std::string)>& reply_raw) const {
  // The reply itself (a socket write) must not throw into the caller either.
  auto reply = [reply_raw](std::string r) {  // a copy: deferred answers outlive the caller
    try {
      reply_raw(std::move(r));
    } catch (const std::exception& e) {
      report_handler_exception("(reply)", e.what());
    } catch (...) {
      report_handler_exception("(reply)", "non-standard exception");
    }
  };
  JsonRefusal why;
  auto parsed = parse_bounded(text, &why, kMaxJsonDepth, kMaxRequestBytes);
  if (!parsed) {
    reply(make_response(nullptr, Error{kParseError, parse_error_message(why), nullptr}, true));
    return;
  }
  json& req = *parsed;
  if (!req.is_object()) {
    reply(make_response(
        nullptr,
        Error{kInvalidRequest, "Invalid request: expected a JSON-RPC 2.0 request object", nullptr},
        true));
    return;
  }
  const DecodedId did = decode_id(req);
  if (!did.valid) {
    reply(make_response(nullptr,
                        Error{kInvalidRequest,
                              "Invalid request: id must be a string (at most " +
                                  std::to_string(kMaxIdBytes) + " bytes), an integer or null",
                              nullptr},
                        true));
    return;
  }
  const json& id = did.id;
  const bool has_id = did.present;
  auto jv = req.find("jsonrpc");
  if (jv == req.end() || !jv->is_string() || jv->get_ref<const std::string&>() != "2.0") {
    reply(make_response(
        id, Error{kInvalidRequest, "Invalid request: jsonrpc field must be '2.0'", nullptr},
        has_id));
    return;
  }
  auto mv = req.find("method");
  if (mv == req.end() || !mv->is_string() || mv->get_ref<const std::string&>().empty()) {
    reply(make_response(
        id, Error{kInvalidRequest, "Invalid request: method must be a non-empty string", nullptr},
        has_id));
    return;
  }
  const std::string method = mv->get_ref<const std::string&>();
  json params = json::object();
  if (auto pv = req.find("params"); pv != req.end() && !pv->is_null()) {
    if (!pv->is_object()) {
      reply(make_response(
          id, Error{kInvalidParams, "Invalid params: params must be an object", nullptr}, has_id));
      return;
    }
    params = std::move(*pv);  // a move, not a copy: depth is bounded anyway
  }
  auto it = handlers_.find(method);
  const Scope needed = ctx.channel == CallContext::Channel::kWebSocket ? kWebSocket : kUnix;
  if (it == handlers_.end() ||
      (ctx.channel != CallContext::Channel::kInternal && !(it->second.scope & needed))) {
    reply(make_response(
        id,
        Error{kMethodNotFound, "method '" + quoted_method(method) + "' is not registered", nullptr},
        has_id));
    return;
  }
  if (!ctx.agent.empty()) {
    // The connection is bound to one agent: it acts as that agent and no other.
    auto cv = params.find("caller_agent_id");
    if (cv == params.end() || cv->is_null()) {
      params["caller_agent_id"] = ctx.agent;
    } else if (!cv->is_string() || cv->get_ref<const std::string&>() != ctx.agent) {
      reply(make_response(id,
                          Error{kInvalidParams,
                                "caller_agent_id must be \"" + ctx.agent +
                                    "\", the agent this connection authenticated as (open "
                                    "another connection to act as another agent)",
                                nullptr},
                          has_id));
      return;
    }
  }
  auto respond = [reply, id, has_id](Outcome o) { reply(make_response(id, o, has_id)); };
  run_handler(it->second.handler, method, params, ctx, std::move(respond));
}

}  // namespace thrum::core::rpc
