// The RPC edge of messaging (SPEC §4, §5): decodes each method's params into typed values (or
// refuses with -32602 naming the parameter) and hands them to the units.
#include "messaging/agent_directory.hpp"
#include "messaging/inbox.hpp"
#include "messaging/message_service.hpp"
#include "messaging/subscriptions.hpp"
#include "messaging/waiters.hpp"
#include "store/messages.hpp"
#include "thrum/common/ids.hpp"
#include "thrum/core/messaging.hpp"
#include "thrum/core/store.hpp"

namespace thrum::core {

using json = nlohmann::json;
using rpc::fail_params;

namespace {

constexpr int64_t kDefaultListLimit = 20;
constexpr int64_t kMaxListLimit = 1000;
constexpr int64_t kMaxWaitMs = 6 * 60 * 1000;

int64_t list_limit(const rpc::Params& params) {
  const int64_t limit = params.opt_int("limit").value_or(kDefaultListLimit);
  if (limit < 1 || limit > kMaxListLimit)
    fail_params("limit must be between 1 and " + std::to_string(kMaxListLimit));
  return limit;
}

}  // namespace

void Messaging::register_methods(rpc::Dispatcher& d) {
  auto& agents = *agents_;
  auto caller = [&agents](const json& p) -> const Agent& {
    auto it = p.find("caller_agent_id");
    if (it == p.end() || it->is_null())
      fail_params("caller_agent_id is required (which agent is acting?)");
    return agents.require_local(rpc::Params(p).str("caller_agent_id"));
  };

  d.add("agent.register", [this](const json& p, const rpc::CallContext&, rpc::Respond r) {
    rpc::Params params(p);
    messaging::AgentDirectory::Registration reg;
    reg.name = params.str("name");
    if (auto err = messaging::AgentDirectory::check_name(reg.name); !err.empty()) fail_params(err);
    reg.role = params.str("role");
    if (reg.role.size() > 64) fail_params("role must be at most 64 characters");
    reg.module = params.opt_str("module");
    reg.display = params.opt_str("display");
    reg.worktree = params.opt_str("worktree");
    reg.intent = params.opt_str("intent");
    reg.agent_pid = params.opt_int("agent_pid");
    reg.write_identity = params.flag("write_identity", false);
    agents_->register_agent(reg, std::move(r), [this] {
      if (router_) router_->agents_changed();
    });
  });

  d.add("agent.list", [this](const json&, const rpc::CallContext&, rpc::Respond r) {
    json list = json::array();
    for (const auto& [id, a] : agents_->agents()) list.push_back(messaging::agent_json(a));
    json out = json::object();
    out["agents"] = std::move(list);  // moved, not copied: 1,000 agents are ~300 KB of JSON
    r(std::move(out));
  });

  d.add("agent.whoami", [caller](const json& p, const rpc::CallContext&, rpc::Respond r) {
    const Agent& a = caller(p);
    json j = messaging::agent_json(a);
    j["status"] = a.active() ? "active" : "offline";
    r(j);
  });

  // `view: "summary"` (what the human `thrum team` prints) answers only agent_id, role,
  // status and is_local per member, and skips the inbox counts; the default `"full"` view is
  // every agent field plus status, is_local, inbox_total and inbox_unread.
  d.add("team.list", [this](const json& p, const rpc::CallContext&, rpc::Respond r) {
    const rpc::Params params(p);
    const bool include_offline = params.flag("include_offline", false);
    const std::string view = params.opt_str("view").value_or("full");
    if (view != "full" && view != "summary")
      fail_params("view must be \"full\" or \"summary\", got \"" + view.substr(0, 32) + "\"");
    const bool summary = view == "summary";
    const auto counts = summary ? std::map<std::string, store::InboxCounts>{}
                                : store::all_inbox_counts(store_.reader());
    json members = json::array();
    for (const auto& [id, a] : agents_->agents()) {
      std::string status;
      std::string role = a.role;
      if (a.is_proxy()) {
        status = "unknown";
        if (router_) {
          auto [presence, remote_role] = router_->proxy_presence(a);
          status = presence;
          if (!remote_role.empty()) role = remote_role;
        }
      } else {
        status = a.active() ? "active" : "offline";
      }
      if (!include_offline && status == "offline" && !a.is_proxy()) continue;
      json m = summary ? json{{"agent_id", a.agent_id}} : messaging::agent_json(a);
      m["role"] = std::move(role);
      m["status"] = std::move(status);
      m["is_local"] = !a.is_proxy();
      if (!summary) {
        auto c = counts.find(id);
        m["inbox_total"] = c == counts.end() ? 0 : c->second.total;
        m["inbox_unread"] = c == counts.end() ? 0 : c->second.unread;
      }
      members.push_back(std::move(m));
    }
    json out = json::object();
    out["members"] = std::move(members);
    r(std::move(out));
  });

  d.add("message.send", [this, caller](const json& p, const rpc::CallContext&, rpc::Respond r) {
    messaging::MessageService::Send s;
    s.caller = &caller(p);
    rpc::Params params(p);
    auto content = p.find("content");
    if (content == p.end() || content->is_null()) fail_params("content is required");
    if (!content->is_string()) fail_params("content must be a string");
    s.content = content->get<std::string>();
    s.format = params.opt_str("format").value_or("markdown");
    s.to = params.str_list("to");
    if (params.flag("broadcast")) s.to.push_back("@everyone");
    s.reply_to = params.opt_str("reply_to");
    service_->send(std::move(s), std::move(r));
  });

  d.add("message.get", [this](const json& p, const rpc::CallContext& ctx, rpc::Respond r) {
    inbox_->get(rpc::Params(p).str("message_id"), ctx.agent, std::move(r));
  });

  d.add("message.list", [this, caller](const json& p, const rpc::CallContext&, rpc::Respond r) {
    const Agent& a = caller(p);
    rpc::Params params(p);
    inbox_->list(a.agent_id, params.flag("unread"), params.flag("mark_read"), list_limit(params),
                 params.opt_str("before"), std::move(r));
  });

  d.add("message.markRead", [this, caller](const json& p, const rpc::CallContext&, rpc::Respond r) {
    const Agent& a = caller(p);
    rpc::Params params(p);
    const bool all = params.flag("all");
    auto ids = params.str_list("message_ids");
    if (!all && ids.empty()) fail_params("message_ids is required (or all: true)");
    inbox_->mark_read(a.agent_id, ids, all, std::move(r));
  });

  d.add("message.outbox", [this, caller](const json& p, const rpc::CallContext&, rpc::Respond r) {
    const Agent& a = caller(p);
    rpc::Params params(p);
    inbox_->sent(a.agent_id, list_limit(params), params.flag("failed"), std::move(r));
  });

  d.add("message.wait", [this, caller](const json& p, const rpc::CallContext&, rpc::Respond r) {
    const Agent& a = caller(p);
    rpc::Params params(p);
    const int64_t timeout_ms = params.opt_int("timeout_ms").value_or(30000);
    if (timeout_ms < 0 || timeout_ms > kMaxWaitMs)
      fail_params("timeout_ms must be between 0 and " + std::to_string(kMaxWaitMs));
    // Messages that arrived just before the wait started still count (an agent that checked its
    // inbox and then waited must not miss what landed in between).
    const std::string after =
        params.opt_str("after").value_or(rfc3339(Clock::now() - std::chrono::seconds(1)));
    waiters_->wait(a.agent_id, timeout_ms, after, std::move(r));
  });

  // After the answer, the connection receives `message.received` for each new message
  // addressed to the caller, until it closes (Unix socket only: the connection must be able to
  // carry notifications).
  d.add(
      "message.subscribe",
      [this, caller](const json& p, const rpc::CallContext& ctx, rpc::Respond r) {
        const Agent& a = caller(p);
        if (!ctx.push)
          rpc::fail(
              "message.subscribe needs a connection that can carry notifications "
              "(use the daemon's Unix socket)");
        subscriptions_->add(a.agent_id, ctx.push, ctx.alive);
        if (ctx.hold) ctx.hold();
        r(json{{"subscribed", true}, {"agent_id", a.agent_id}});
      },
      rpc::Dispatcher::kUnix);
}

}  // namespace thrum::core
