#include "thrum/core/json_rpc.hpp"

#include <spdlog/spdlog.h>

namespace thrum::core::rpc {

std::string Params::str(const char* key) const {
  auto it = p_.find(key);
  if (it == p_.end() || it->is_null()) fail_params(std::string(key) + " is required");
  if (!it->is_string()) fail_params(std::string(key) + " must be a string");
  if (it->get_ref<const std::string&>().empty()) fail_params(std::string(key) + " is required");
  return it->get<std::string>();
}

std::optional<std::string> Params::opt_str(const char* key) const {
  auto it = p_.find(key);
  if (it == p_.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) fail_params(std::string(key) + " must be a string");
  return it->get<std::string>();
}

std::optional<int64_t> Params::opt_int(const char* key) const {
  auto it = p_.find(key);
  if (it == p_.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) fail_params(std::string(key) + " must be an integer");
  return it->get<int64_t>();
}

bool Params::flag(const char* key, bool def) const {
  auto it = p_.find(key);
  if (it == p_.end() || it->is_null()) return def;
  if (!it->is_boolean()) fail_params(std::string(key) + " must be true or false");
  return it->get<bool>();
}

std::vector<std::string> Params::str_list(const char* key) const {
  std::vector<std::string> out;
  auto it = p_.find(key);
  if (it == p_.end() || it->is_null()) return out;
  if (it->is_string()) {
    out.push_back(it->get<std::string>());
    return out;
  }
  if (!it->is_array()) fail_params(std::string(key) + " must be a string or an array of strings");
  for (const auto& v : *it) {
    if (!v.is_string()) fail_params(std::string(key) + " must contain only strings");
    out.push_back(v.get<std::string>());
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
      out += id.dump(-1, ' ', false, json::error_handler_t::replace);
      out += ',';
    }
    out += "\"jsonrpc\":\"2.0\",\"result\":";
    out += outcome.result().dump(-1, ' ', false, json::error_handler_t::replace);
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
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string make_notification(std::string_view method, const json& params) {
  // Same bytes as dumping {"jsonrpc", "method", "params"}, without copying params.
  std::string out = "{\"jsonrpc\":\"2.0\",\"method\":";
  out += json(method).dump(-1, ' ', false, json::error_handler_t::replace);
  out += ",\"params\":";
  out += params.dump(-1, ' ', false, json::error_handler_t::replace);
  out += '}';
  return out;
}

void Dispatcher::call(const std::string& method, const json& params, const CallContext& ctx,
                      Respond respond) const {
  auto it = handlers_.find(method);
  if (it == handlers_.end()) {
    respond(Error{kMethodNotFound, "method '" + method + "' is not registered", nullptr});
    return;
  }
  // The handler gets a copy: if it throws while validating, we still hold one to answer with.
  try {
    it->second.handler(params, ctx, respond);
  } catch (const Failure& f) {
    respond(Error{f.code, f.what(), nullptr});
  } catch (const nlohmann::json::exception& e) {
    respond(Error{kInvalidParams, std::string("Invalid params: ") + e.what(), nullptr});
  } catch (const std::exception& e) {
    spdlog::error("rpc handler failed method={} error=\"{}\"", method, e.what());
    respond(Error{kInternalError, "Internal error: " + std::string(e.what()), nullptr});
  }
}

void Dispatcher::handle(std::string_view text, const CallContext& ctx,
                        const std::function<void(std::string)>& reply) const {
  json req = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded()) {
    reply(make_response(
        nullptr, Error{kParseError, "Parse error: the request is not valid JSON", nullptr}, true));
    return;
  }
  if (!req.is_object()) {
    reply(make_response(
        nullptr,
        Error{kInvalidRequest, "Invalid request: expected a JSON-RPC 2.0 request object", nullptr},
        true));
    return;
  }
  json id = nullptr;
  bool has_id = false;
  if (auto it = req.find("id"); it != req.end()) {
    if (!it->is_null() && !it->is_string() && !it->is_number()) {
      reply(make_response(
          nullptr,
          Error{kInvalidRequest, "Invalid request: id must be a string, number or null", nullptr},
          true));
      return;
    }
    id = *it;
    has_id = true;
  }
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
  const std::string& method = mv->get_ref<const std::string&>();
  json params = json::object();
  if (auto pv = req.find("params"); pv != req.end() && !pv->is_null()) {
    if (!pv->is_object()) {
      reply(make_response(
          id, Error{kInvalidParams, "Invalid params: params must be an object", nullptr}, has_id));
      return;
    }
    params = std::move(*pv);
  }
  auto it = handlers_.find(method);
  const Scope needed = ctx.channel == CallContext::Channel::kWebSocket ? kWebSocket : kUnix;
  if (it == handlers_.end() ||
      (ctx.channel != CallContext::Channel::kInternal && !(it->second.scope & needed))) {
    reply(make_response(
        id, Error{kMethodNotFound, "method '" + method + "' is not registered", nullptr}, has_id));
    return;
  }
  auto respond = [reply, id, has_id](Outcome o) { reply(make_response(id, o, has_id)); };
  try {
    it->second.handler(params, ctx, std::move(respond));
  } catch (const Failure& f) {
    reply(make_response(id, Error{f.code, f.what(), nullptr}, has_id));
  } catch (const nlohmann::json::exception& e) {
    // A handler read a param with the wrong type without checking: still the caller's fault.
    reply(make_response(
        id, Error{kInvalidParams, std::string("Invalid params: ") + e.what(), nullptr}, has_id));
  } catch (const std::exception& e) {
    spdlog::error("rpc handler failed method={} error=\"{}\"", method, e.what());
    reply(make_response(
        id, Error{kInternalError, "Internal error: " + std::string(e.what()), nullptr}, has_id));
  }
}

}  // namespace thrum::core::rpc
