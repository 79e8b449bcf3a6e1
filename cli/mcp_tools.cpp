#include "mcp_tools.hpp"

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <vector>

#include "client.hpp"
#include "thrum/common/bounded_json.hpp"

namespace thrum::cli::mcp {

using namespace std::chrono_literals;

namespace {

/// A bad argument: becomes a tool error with this text.
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Typed access to a tool's arguments; every refusal names the argument and the tool.
class Args {
 public:
  Args(const char* tool, const json& a, std::initializer_list<const char*> known) : tool_(tool) {
    if (a.is_null()) return;
    if (!a.is_object()) throw ArgError(std::string(tool) + ": arguments must be an object");
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (std::none_of(known.begin(), known.end(), [&](const char* k) { return it.key() == k; })) {
        std::string names;
        for (const char* k : known) names += (names.empty() ? "" : ", ") + std::string(k);
        throw ArgError(std::string(tool) + ": unknown argument '" + it.key() + "' (" +
                       (names.empty() ? "it takes none" : "it takes " + names) + ")");
      }
    }
    a_ = &a;
  }

  const json* find(const char* key) const {
    if (!a_) return nullptr;
    auto it = a_->find(key);
    return it == a_->end() || it->is_null() ? nullptr : &*it;
  }
  std::optional<std::string> str(const char* key, bool required) const {
    const json* v = find(key);
    if (!v) {
      if (required) throw ArgError(prefix(key) + " is required");
      return std::nullopt;
    }
    if (!v->is_string()) throw ArgError(prefix(key) + " must be a string");
    auto s = v->get<std::string>();
    if (s.empty()) throw ArgError(prefix(key) + " must not be empty");
    return s;
  }
  std::optional<bool> flag(const char* key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) throw ArgError(prefix(key) + " must be true or false");
    return v->get<bool>();
  }
  /// A number within [lo, hi]; integers only when `integer`.
  std::optional<double> number(const char* key, double lo, double hi, bool integer) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    const bool ok = integer ? v->is_number_integer() : v->is_number();
    if (!ok) throw ArgError(prefix(key) + (integer ? " must be an integer" : " must be a number"));
    const double d = v->get<double>();
    if (d < lo || d > hi)
      throw ArgError(prefix(key) + " must be between " + std::to_string(static_cast<int64_t>(lo)) +
                     " and " + std::to_string(static_cast<int64_t>(hi)));
    return d;
  }
  /// A string or an array of non-empty strings.
  std::vector<std::string> str_list(const char* key) const {
    std::vector<std::string> out;
    const json* v = find(key);
    if (!v) return out;
    if (v->is_string()) {
      if (!v->get<std::string>().empty()) out.push_back(v->get<std::string>());
      return out;
    }
    if (!v->is_array()) throw ArgError(prefix(key) + " must be a string or an array of strings");
    for (const auto& e : *v) {
      if (!e.is_string() || e.get<std::string>().empty())
        throw ArgError(prefix(key) + " must contain only non-empty strings");
      out.push_back(e.get<std::string>());
    }
    return out;
  }

 private:
  std::string prefix(const char* key) const { return std::string(tool_) + ": " + key; }
  const char* tool_;
  const json* a_ = nullptr;
};

json schema(json properties, std::vector<std::string> required = {}) {
  json s = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) s["required"] = required;
  s["additionalProperties"] = false;
  return s;
}

json tool(const char* name, const char* title, const char* description, json input_schema,
          bool read_only) {
  return json{{"name", name},
              {"title", title},
              {"description", description},
              {"inputSchema", std::move(input_schema)},
              {"annotations", {{"readOnlyHint", read_only}, {"openWorldHint", false}}}};
}

/// The message fields an agent needs (the daemon's message object, without internals).
json message_view(const json& m) {
  json out = json::object();
  for (const char* k : {"message_id", "author", "body", "format", "created_at", "thread_id",
                        "reply_to", "is_read"}) {
    if (auto it = m.find(k); it != m.end()) out[k] = *it;
  }
  return out;
}

}  // namespace

json tool_result(const json& structured) {
  return json{
      {"content", json::array({{{"type", "text"}, {"text", core::dump_compact(structured)}}})},
      {"structuredContent", structured}};
}

json tool_error(const std::string& message) {
  return json{{"content", json::array({{{"type", "text"}, {"text", message}}})}, {"isError", true}};
}

json Tools::list() {
  const json str = {{"type", "string"}};
  json tools = json::array();
  tools.push_back(
      tool("send_message", "Send a message",
           "Send a message to other agents. to: @name, @prefix:name (an agent on a peer) or "
           "@everyone; with reply_to alone it goes to that message's author, in its thread. "
           "Returns message_id, thread_id and the recipients.",
           schema({{"to",
                    {{"description", "Recipient(s): @name, @prefix:name or @everyone"},
                     {"anyOf", json::array({str, {{"type", "array"}, {"items", str}}})}}},
                   {"content", {{"type", "string"}, {"description", "Message text (markdown)"}}},
                   {"reply_to", {{"type", "string"}, {"description", "message_id this answers"}}}},
                  {"content"}),
           false));
  tools.push_back(tool(
      "check_messages", "Check my inbox",
      "My messages, newest first. Marks the returned ones read unless peek is true.",
      schema({{"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 100}, {"default", 20}}},
              {"unread_only", {{"type", "boolean"}, {"default", true}}},
              {"peek", {{"type", "boolean"}, {"default", false}}}}),
      false));
  tools.push_back(
      tool("wait_for_message", "Wait for a message",
           "Block until a message for me arrives (returns at once if one is unread) or timeout "
           "seconds pass. Returns the messages and marks them read.",
           schema({{"timeout",
                    {{"type", "number"},
                     {"minimum", 0},
                     {"maximum", kMaxWaitSeconds},
                     {"default", kDefaultWaitSeconds},
                     {"description", "Seconds"}}}}),
           false));
  tools.push_back(tool("list_agents", "List agents",
                       "Agents I can message, local and on peers (via_peer), with status.",
                       schema(json::object()), true));
  tools.push_back(tool("message_status", "Delivery status",
                       "Per-recipient state of a message I sent: queued, delivered, read or "
                       "failed (with reason).",
                       schema({{"message_id", str}}, {"message_id"}), true));
  tools.push_back(tool("list_peers", "List peers",
                       "Paired Thrum daemons (other repos/machines) and their link state.",
                       schema(json::object()), true));
  return json{{"tools", tools}};
}

json Tools::call(const std::string& name, const json& arguments) const {
  try {
    if (name == "send_message") return send_message(arguments);
    if (name == "check_messages") return check_messages(arguments);
    if (name == "wait_for_message") return wait_for_message(arguments);
    if (name == "list_agents") return list_agents(arguments);
    if (name == "message_status") return message_status(arguments);
    if (name == "list_peers") return list_peers(arguments);
    return tool_error("unknown tool '" + name + "' (tools/list names the tools)");
  } catch (const ArgError& e) {
    return tool_error(e.what());
  } catch (const RpcError& e) {
    return tool_error(e.what());
  } catch (const ConnectError& e) {
    return tool_error(e.what());
  } catch (const std::exception& e) {
    return tool_error(std::string(name) + " failed: " + e.what());
  }
}

json Tools::send_message(const json& arguments) const {
  Args a("send_message", arguments, {"to", "content", "reply_to"});
  const auto to = a.str_list("to");
  const json* content = a.find("content");
  if (!content) throw ArgError("send_message: content is required");
  if (!content->is_string() || content->get<std::string>().empty())
    throw ArgError("send_message: content must be a non-empty string");
  const auto reply_to = a.str("reply_to", false);
  if (to.empty() && !reply_to)
    throw ArgError(
        "send_message: missing recipient: give to as @name, @prefix:name (an agent on a peer) or "
        "@everyone");
  json params = {{"caller_agent_id", agent_}, {"content", *content}, {"to", to}};
  if (reply_to) params["reply_to"] = *reply_to;
  json r = call_("message.send", params, 30s);
  if (reply_to) {
    // Replying means the parent was read (as `thrum reply` does).
    try {
      call_("message.markRead", {{"caller_agent_id", agent_}, {"message_ids", {*reply_to}}}, 30s);
    } catch (const RpcError&) {
    }
  }
  json out = {{"message_id", r.value("message_id", "")},
              {"thread_id", r.contains("thread_id") ? r["thread_id"] : json(nullptr)},
              {"recipients", r.contains("recipients") ? r["recipients"] : json::array()}};
  return tool_result(out);
}

json Tools::check_messages(const json& arguments) const {
  Args a("check_messages", arguments, {"limit", "unread_only", "peek"});
  const auto limit = static_cast<int64_t>(a.number("limit", 1, 100, true).value_or(20));
  const bool unread_only = a.flag("unread_only").value_or(true);
  const bool peek = a.flag("peek").value_or(false);
  json r = call_("message.list",
                 {{"caller_agent_id", agent_},
                  {"unread", unread_only},
                  {"limit", limit},
                  {"mark_read", !peek}},
                 30s);
  json messages = json::array();
  if (r.contains("messages") && r["messages"].is_array())
    for (const auto& m : r["messages"]) messages.push_back(message_view(m));
  return tool_result(json{{"messages", messages},
                          {"total", r.value("total", 0)},
                          {"unread", r.value("unread", 0)},
                          {"marked_read", r.value("marked_read", 0)}});
}

json Tools::unread_snapshot() const {
  json r = call_(
      "message.list",
      {{"caller_agent_id", agent_}, {"unread", true}, {"limit", 100}, {"mark_read", false}}, 30s);
  json messages = json::array();
  if (r.contains("messages") && r["messages"].is_array())
    for (const auto& m : r["messages"]) messages.push_back(message_view(m));
  return json{{"agent", agent_}, {"unread", r.value("unread", 0)}, {"messages", messages}};
}

json Tools::wait_for_message(const json& arguments) const {
  Args a("wait_for_message", arguments, {"timeout"});
  const double seconds =
      a.number("timeout", 0, kMaxWaitSeconds, false).value_or(kDefaultWaitSeconds);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  auto take_unread = [&]() {
    json r = call_(
        "message.list",
        {{"caller_agent_id", agent_}, {"unread", true}, {"limit", 20}, {"mark_read", true}}, 30s);
    json messages = json::array();
    if (r.contains("messages") && r["messages"].is_array())
      for (const auto& m : r["messages"]) messages.push_back(message_view(m));
    return messages;
  };
  // Something unread already: no wait.
  if (json m = take_unread(); !m.empty())
    return tool_result(json{{"status", "received"}, {"messages", m}});
  // The daemon bounds one wait (6 min); longer timeouts wait in chunks.
  constexpr auto kChunk = std::chrono::milliseconds(300'000);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    const auto chunk = std::min(left, kChunk);
    json r = call_("message.wait", {{"caller_agent_id", agent_}, {"timeout_ms", chunk.count()}},
                   chunk + 10s);
    if (r.value("status", "") != "received") continue;
    // Another reader (the CLI, another session) may have taken it first: keep waiting then.
    if (json m = take_unread(); !m.empty())
      return tool_result(json{{"status", "received"}, {"messages", m}});
  }
  return tool_result(json{{"status", "timeout"}, {"messages", json::array()}});
}

json Tools::list_agents(const json& arguments) const {
  Args a("list_agents", arguments, {});
  json r = call_("team.list", {{"include_offline", true}}, 30s);
  json agents = json::array();
  if (r.contains("members") && r["members"].is_array())
    for (const auto& m : r["members"]) {
      if (!m.is_object()) continue;
      json j = {{"name", m.value("agent_id", "")},
                {"role", m.value("role", "")},
                {"status", m.value("status", "")},
                {"local", m.value("is_local", true)}};
      if (!m.value("is_local", true)) j["via_peer"] = m.value("peer_name", "");
      if (m.value("agent_id", "") == agent_) j["me"] = true;
      agents.push_back(std::move(j));
    }
  return tool_result(json{{"agents", agents}});
}

json Tools::message_status(const json& arguments) const {
  Args a("message_status", arguments, {"message_id"});
  const std::string id = *a.str("message_id", true);
  json r = call_("message.get", {{"message_id", id}}, 30s);
  const json& m = r.contains("message") && r["message"].is_object() ? r["message"] : r;
  json recipients = json::array();
  if (m.contains("recipients") && m["recipients"].is_array())
    for (const auto& x : m["recipients"]) {
      if (!x.is_object()) continue;
      json j = {{"agent_id", x.value("agent_id", "")}, {"state", x.value("state", "")}};
      for (const char* k : {"delivered_at", "read_at", "reason"})
        if (x.contains(k) && !x[k].is_null()) j[k] = x[k];
      recipients.push_back(std::move(j));
    }
  return tool_result(json{{"message_id", id},
                          {"author", m.value("author", "")},
                          {"created_at", m.value("created_at", "")},
                          {"recipients", recipients}});
}

json Tools::list_peers(const json& arguments) const {
  Args a("list_peers", arguments, {});
  json r = call_("peer.list", json::object(), 30s);
  json peers = json::array();
  if (r.contains("peers") && r["peers"].is_array())
    for (const auto& p : r["peers"]) {
      if (!p.is_object()) continue;
      json j = json::object();
      for (const char* k :
           {"name", "transport", "proxy_prefix", "remote_agents", "state", "connected", "queued",
            "last_error", "remote_repo_name", "remote_hostname", "last_sync"})
        if (auto it = p.find(k); it != p.end()) j[k] = *it;
      peers.push_back(std::move(j));
    }
  return tool_result(json{{"peers", peers}});
}

}  // namespace thrum::cli::mcp
