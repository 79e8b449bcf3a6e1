#include "mcp_session.hpp"

#include "thrum/common/bounded_json.hpp"

namespace thrum::cli::mcp {

namespace {

constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;
constexpr int kResourceNotFound = -32002;  // MCP's code for an unknown resource

constexpr const char* kInstructions =
    "Thrum delivers messages from other agents (this repo, other repos, other machines). New "
    "messages arrive as <channel source=\"thrum\" ...> events when channels are enabled; "
    "otherwise call wait_for_message or check_messages. Answer with send_message "
    "(reply_to: the message_id).";

/// Only strings: the claude/channel meta values become attributes of the <channel> tag.
void meta_str(json& meta, const char* key, const json& m, const char* field) {
  if (auto it = m.find(field); it != m.end() && it->is_string()) meta[key] = *it;
}

}  // namespace

json channel_notification(const json& message) {
  json meta = json::object();
  meta_str(meta, "message_id", message, "message_id");
  meta_str(meta, "from", message, "author");
  meta_str(meta, "thread_id", message, "thread_id");
  meta_str(meta, "reply_to", message, "reply_to");
  meta_str(meta, "created_at", message, "created_at");
  std::string content;
  if (auto it = message.find("body"); it != message.end() && it->is_string())
    content = it->get<std::string>();
  return json{{"jsonrpc", "2.0"},
              {"method", "notifications/claude/channel"},
              {"params", {{"content", content}, {"meta", meta}}}};
}

void Session::reply(const json& id, json result) {
  send_(json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}});
}

void Session::reply_error(const json& id, int code, const std::string& message) {
  send_(json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
}

void Session::line_too_long() {
  reply_error(nullptr, kInvalidRequest, "message too long; it was skipped");
}

void Session::handle_line(std::string_view line) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return;
  core::JsonRefusal why;
  auto doc = core::parse_bounded(line, &why);
  if (!doc) {
    reply_error(nullptr, kParseError, "parse error: " + why.message);
    return;
  }
  if (doc->is_array()) {
    reply_error(nullptr, kInvalidRequest, "batches are not supported (send one message a line)");
    return;
  }
  if (!doc->is_object()) {
    reply_error(nullptr, kInvalidRequest, "a JSON-RPC message must be an object");
    return;
  }
  const json& msg = *doc;
  json id = nullptr;
  bool has_id = false;
  if (auto it = msg.find("id"); it != msg.end()) {
    if (!it->is_string() && !it->is_number_integer()) {
      reply_error(nullptr, kInvalidRequest, "id must be a string or an integer");
      return;
    }
    id = *it;
    has_id = true;
  }
  auto m = msg.find("method");
  if (m == msg.end()) return;  // a response to nothing we asked: ignore
  if (!m->is_string()) {
    if (has_id) reply_error(id, kInvalidRequest, "method must be a string");
    return;
  }
  const std::string method = m->get<std::string>();
  json params = json::object();
  if (auto p = msg.find("params"); p != msg.end() && !p->is_null()) {
    if (!p->is_object()) {
      if (has_id) reply_error(id, kInvalidParams, "params must be an object");
      return;
    }
    params = *p;
  }
  if (!has_id) return;  // notifications (initialized, cancelled, ...) need no answer
  try {
    handle_request(id, method, params);
  } catch (const std::exception& e) {
    reply_error(id, kInternalError, method + " failed: " + e.what());
  }
}

void Session::handle_request(const json& id, const std::string& method, const json& params) {
  if (method == "initialize") {
    reply(id, initialize(params));
    initialized_ = true;  // pushes may start once the client has our answer
    return;
  }
  if (method == "ping") {
    reply(id, json::object());
    return;
  }
  if (!initialized_) {
    reply_error(id, kInvalidRequest, "not initialized: send initialize first");
    return;
  }
  if (method == "tools/list") {
    reply(id, Tools::list());
    return;
  }
  if (method == "tools/call") {
    auto n = params.find("name");
    if (n == params.end() || !n->is_string()) {
      reply_error(id, kInvalidParams, "tools/call: name must be a string");
      return;
    }
    const std::string name = n->get<std::string>();
    json args = params.contains("arguments") ? params["arguments"] : json(nullptr);
    if (Tools::is_long(name)) {
      spawn_([this, id, name, args] { reply(id, tools_.call(name, args)); });
    } else {
      reply(id, tools_.call(name, args));
    }
    return;
  }
  if (method == "resources/list") {
    reply(id, json{{"resources", json::array({{{"uri", kInboxUri},
                                               {"name", "inbox"},
                                               {"title", "My unread Thrum messages"},
                                               {"mimeType", "application/json"}}})}});
    return;
  }
  if (method == "resources/templates/list") {
    reply(id, json{{"resourceTemplates", json::array()}});
    return;
  }
  if (method == "resources/read") {
    auto u = params.find("uri");
    if (u == params.end() || !u->is_string() || u->get<std::string>() != kInboxUri) {
      reply_error(
          id, kResourceNotFound,
          std::string("resources/read: unknown resource (the only one is ") + kInboxUri + ")");
      return;
    }
    reply(id, read_resource());
    return;
  }
  if (method == "resources/subscribe" || method == "resources/unsubscribe") {
    auto u = params.find("uri");
    if (u == params.end() || !u->is_string() || u->get<std::string>() != kInboxUri) {
      reply_error(id, kInvalidParams,
                  method + ": unknown resource (the only one is " + kInboxUri + ")");
      return;
    }
    inbox_subscribed_ = method == "resources/subscribe";
    reply(id, json::object());
    return;
  }
  if (method == "prompts/list") {
    reply(id, json{{"prompts", json::array()}});
    return;
  }
  reply_error(id, kMethodNotFound, "method not found: " + method);
}

json Session::initialize(const json& params) {
  std::string version = kProtocolVersions[0];
  if (auto v = params.find("protocolVersion"); v != params.end() && v->is_string())
    for (const char* ours : kProtocolVersions)
      if (v->get<std::string>() == ours) version = ours;
  return json{{"protocolVersion", version},
              {"capabilities",
               {{"tools", {{"listChanged", false}}},
                {"resources", {{"subscribe", true}, {"listChanged", false}}},
                {"experimental", {{"claude/channel", json::object()}}}}},
              {"serverInfo", {{"name", "thrum"}, {"title", "Thrum"}, {"version", THRUM_VERSION}}},
              {"instructions", std::string(kInstructions) + " You are @" + tools_.agent() + "."}};
}

json Session::read_resource() {
  json snapshot = tools_.unread_snapshot();
  return json{{"contents", json::array({{{"uri", kInboxUri},
                                         {"mimeType", "application/json"},
                                         {"text", core::dump_compact(snapshot)}}})}};
}

void Session::message_arrived(const json& message) {
  if (!initialized_) return;  // check_messages shows it; nobody is listening yet
  send_(channel_notification(message));
  if (inbox_subscribed_)
    send_(json{{"jsonrpc", "2.0"},
               {"method", "notifications/resources/updated"},
               {"params", {{"uri", kInboxUri}}}});
}

}  // namespace thrum::cli::mcp
