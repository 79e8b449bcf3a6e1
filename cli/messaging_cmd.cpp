// quickstart, whoami, send, reply, inbox, sent, message read, wait, team (SPEC §5).
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <iterator>

#include "cli.hpp"
#include "client.hpp"
#include "format.hpp"
#include "identity.hpp"

namespace thrum::cli {
using namespace std::chrono_literals;

namespace {

struct Session {
  core::RepoPaths paths;
  std::string agent;
  RpcClient client;
};

Session open_session(const Context& ctx) {
  auto paths = require_repo(ctx);
  auto agent = current_agent(paths);
  return Session{paths, agent, RpcClient(paths.sock)};
}

std::string read_stdin() {
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

/// "@a, @b" from an audience "agent:a,agent:b" or "broadcast:everyone".
std::string audience_text(const std::string& audience) {
  if (audience == "broadcast:everyone") return "@everyone";
  std::string out;
  size_t pos = 0;
  while (pos < audience.size()) {
    size_t comma = audience.find(',', pos);
    std::string part =
        audience.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (part.rfind("agent:", 0) == 0) part = "@" + part.substr(6);
    out += (out.empty() ? "" : ", ") + part;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

// -- quickstart / whoami -----------------------------------------------------------------------

struct QuickstartArgs {
  std::string name, role, module, intent, display;
};

int cmd_quickstart(Context& ctx, const QuickstartArgs& a) {
  auto paths = require_repo(ctx);
  RpcClient client(paths.sock);
  json params = {{"name", a.name},
                 {"role", a.role},
                 {"module", a.module},
                 {"worktree", current_worktree()},
                 {"write_identity", true}};
  // Agent runtimes often run each command in a throwaway shell, so the CLI's parent says
  // nothing about the agent. Only a pid the caller names is used for liveness.
  if (const char* pid = std::getenv("THRUM_AGENT_PID"); pid && std::atoll(pid) > 0)
    params["agent_pid"] = static_cast<int64_t>(std::atoll(pid));
  if (!a.intent.empty()) params["intent"] = a.intent;
  if (!a.display.empty()) params["display"] = a.display;
  json r = client.call("agent.register", params);
  if (ctx.g.json) {
    print_json(r);
    return 0;
  }
  std::cout << ok_mark() << " Registered as @" << r.value("agent_id", "") << " (role "
            << r.value("role", "") << ")\n"
            << ok_mark() << " Session started: " << r.value("session_id", "") << "\n";
  if (!a.intent.empty()) std::cout << ok_mark() << " Intent set: " << a.intent << "\n";
  if (!ctx.g.quiet && r.contains("identity_file"))
    std::cout << "  Identity: "
              // Relative to where the agent runs (a git worktree uses its main worktree's .thrum/).
              << std::filesystem::relative(r["identity_file"].get<std::string>(),
                                           std::filesystem::current_path())
                     .string()
              << "\n";
  return 0;
}

int cmd_whoami(Context& ctx) {
  auto s = open_session(ctx);
  json r = s.client.call("agent.whoami", {{"caller_agent_id", s.agent}});
  if (ctx.g.json) {
    print_json(r);
    return 0;
  }
  std::cout << "Agent ID:  " << r.value("agent_id", "") << "\n"
            << "Role:      " << r.value("role", "") << "\n";
  if (!r.value("module", "").empty()) std::cout << "Module:    " << r.value("module", "") << "\n";
  if (!r.value("intent", "").empty()) std::cout << "Intent:    " << r.value("intent", "") << "\n";
  if (r["session_id"].is_string())
    std::cout << "Session:   " << r["session_id"].get<std::string>() << " (started "
              << ago_short(r.value("session_started_at", "")) << ", " << r.value("status", "")
              << ")\n";
  std::cout << "Worktree:  " << r.value("worktree", "") << "\n"
            << "Identity:  .thrum/identities/" << r.value("agent_id", "") << ".json\n";
  return 0;
}

// -- send / reply ------------------------------------------------------------------------------

struct SendArgs {
  std::string message;
  std::vector<std::string> to;
  bool broadcast = false;
  bool from_stdin = false;
};

std::string message_body(const std::string& arg, bool from_stdin) {
  if (from_stdin || arg == "-") {
    std::string body = read_stdin();
    if (!body.empty() && body.back() == '\n') body.pop_back();
    return body;
  }
  return arg;
}

int cmd_send(Context& ctx, const SendArgs& a) {
  if (a.to.empty() && !a.broadcast)
    throw UsageError(
        "thrum send: missing recipient. Did you intend to:\n"
        "  - send to a specific agent? Use --to @agent_name (or @prefix:agent for a peer's agent)\n"
        "  - broadcast to the entire team? Use --broadcast (same as --to @everyone)");
  if (a.message.empty() && !a.from_stdin)
    throw UsageError("thrum send: missing message text (give it as an argument, or use --stdin)");
  std::string body = message_body(a.message, a.from_stdin);
  auto s = open_session(ctx);
  json params = {{"caller_agent_id", s.agent}, {"content", body}, {"to", a.to}};
  if (a.broadcast) params["broadcast"] = true;
  json r = s.client.call("message.send", params);
  if (ctx.g.json) {
    print_json(r);
    return 0;
  }
  std::cout << ok_mark() << " Message sent: " << r.value("message_id", "") << "\n";
  if (r["thread_id"].is_string())
    std::cout << "  Thread: " << r["thread_id"].get<std::string>() << "\n";
  std::string to;
  for (const auto& t : a.to) to += (to.empty() ? "" : ", ") + (t.rfind('@', 0) == 0 ? t : "@" + t);
  if (a.broadcast) to += (to.empty() ? "" : ", ") + std::string("@everyone");
  std::cout << "  To: " << to << "\n";
  if (!ctx.g.quiet) {
    std::string rec;
    for (const auto& x : r["recipients"]) rec += (rec.empty() ? "" : ", ") + x.get<std::string>();
    std::cout << "  Recipients: " << (rec.empty() ? "(none yet)" : rec) << "\n";
  }
  return 0;
}

int cmd_reply(Context& ctx, const std::string& parent, const std::string& message,
              bool from_stdin) {
  if (message.empty() && !from_stdin)
    throw UsageError("thrum reply: missing message text (thrum reply MSG_ID \"text\")");
  std::string body = message_body(message, from_stdin);
  auto s = open_session(ctx);
  json r = s.client.call("message.send",
                         {{"caller_agent_id", s.agent}, {"content", body}, {"reply_to", parent}});
  // Replying means the parent was read.
  try {
    s.client.call("message.markRead", {{"caller_agent_id", s.agent}, {"message_ids", {parent}}});
  } catch (const RpcError&) {
  }
  if (ctx.g.json) {
    print_json(r);
    return 0;
  }
  std::cout << ok_mark() << " Reply sent: " << r.value("message_id", "") << "\n";
  if (r["thread_id"].is_string())
    std::cout << "  Thread: " << r["thread_id"].get<std::string>() << "\n";
  return 0;
}

// -- inbox / sent ------------------------------------------------------------------------------

void print_box(const json& messages) {
  int width = std::clamp(terminal_width() - 2, 40, 120);
  const size_t inner = static_cast<size_t>(width - 4);
  auto rule = [&](const char* l, const char* r) {
    std::string s = l;
    for (int i = 0; i < width - 2; ++i) s += "─";
    return s + r;
  };
  std::cout << rule("┌", "┐") << "\n";
  bool first = true;
  for (const auto& m : messages) {
    if (!first) std::cout << rule("├", "┤") << "\n";
    first = false;
    const bool read = m.value("is_read", false);
    std::string header = std::string(read ? glyph("○", "-") : glyph("●", "*")) + " " +
                         m.value("message_id", "") + "  " +
                         (m["reply_to"].is_string() ? std::string(glyph("↳", "re:")) + " " : "") +
                         "@" + m.value("author", "") + "  " + ago_short(m.value("created_at", ""));
    std::cout << "│ " << pad(header, inner) << " │\n";
    for (const auto& line : wrap(m.value("body", ""), inner))
      std::cout << "│ " << pad(line, inner) << " │\n";
  }
  std::cout << rule("└", "┘") << "\n";
}

/// The inbox as plain text (not a terminal, NO_COLOR, LANG=C): a header line per message, the
/// body indented under it with its own line breaks and indentation, a blank line between.
void print_plain(const json& messages) {
  const size_t inner = static_cast<size_t>(std::clamp(terminal_width(), 40, 200) - 4);
  bool first = true;
  for (const auto& m : messages) {
    if (!first) std::cout << "\n";
    first = false;
    const bool read = m.value("is_read", false);
    std::cout << (read ? "  " : "* ") << m.value("message_id", "") << "  "
              << (m["reply_to"].is_string() ? "re: " : "") << "@" << m.value("author", "") << "  "
              << ago_short(m.value("created_at", "")) << "\n";
    for (const auto& line : wrap(m.value("body", ""), inner))
      std::cout << (line.empty() ? "" : "    ") << line << "\n";
  }
}

int cmd_inbox(Context& ctx, bool unread, int limit) {
  auto s = open_session(ctx);
  json r = s.client.call(
      "message.list",
      {{"caller_agent_id", s.agent}, {"unread", unread}, {"limit", limit}, {"mark_read", !unread}});
  if (ctx.g.json) {
    print_json(r);
    return 0;
  }
  const auto& msgs = r["messages"];
  if (msgs.empty()) {
    std::cout << (unread ? "No unread messages for @" : "No messages for @") << s.agent << ".\n";
    return 0;
  }
  if (plain_output())
    print_plain(msgs);
  else
    print_box(msgs);
  std::cout << "Showing 1-" << msgs.size() << " of "
            << (unread ? r.value("unread", 0) : r.value("total", 0)) << " messages ("
            << r.value("unread", 0) << " unread)\n";
  return 0;
}

/// Whether any recipient of the outbox entry `m` is in state "failed".
bool has_failed(const json& m) {
  auto rs = m.find("recipients");
  if (rs == m.end() || !rs->is_array()) return false;
  for (const auto& x : *rs)
    if (x.is_object() && x.value("state", "") == "failed") return true;
  return false;
}

/// "queued", "delivered", "read", or "failed: <reason>" for one recipient.
std::string recipient_state_text(const json& x) {
  std::string state = x.value("state", "");
  if (state != "failed") return state;
  auto reason = x.find("reason");
  return reason != x.end() && reason->is_string() && !reason->get<std::string>().empty()
             ? "failed: " + reason->get<std::string>()
             : state;
}

int cmd_sent(Context& ctx, int limit, bool failed_only) {
  auto s = open_session(ctx);
  // The daemon filters --failed in its query (the page is full however old the failures
  // are); the filter below only matters against a daemon from before that parameter.
  json params = {{"caller_agent_id", s.agent}, {"limit", limit}};
  if (failed_only) params["failed"] = true;
  json r = s.client.call("message.outbox", params);
  if (failed_only && r.contains("messages") && r["messages"].is_array()) {
    json kept = json::array();
    for (const auto& m : r["messages"])
      if (has_failed(m) && static_cast<int>(kept.size()) < limit) kept.push_back(m);
    r["messages"] = std::move(kept);
  }
  if (ctx.g.json) {
    print_json(r);
    return 0;
  }
  if (r["messages"].empty()) {
    std::cout << (failed_only ? "No sent messages with a failed delivery.\n"
                              : "No sent messages.\n");
    return 0;
  }
  for (const auto& m : r["messages"]) {
    int read = 0, total = 0;
    std::string rec;
    for (const auto& x : m["recipients"]) {
      ++total;
      if (x.value("state", "") == "read") ++read;
      rec += (rec.empty() ? "@" : ", @") + x.value("agent_id", "") + "(" + recipient_state_text(x) +
             ")";
    }
    std::cout << m.value("message_id", "") << "  " << ago_short(m.value("created_at", ""))
              << "  to " << audience_text(m.value("audience", "")) << "  " << read << "/" << total
              << " read\n";
    auto lines = wrap(m.value("body", ""), 100);
    std::cout << "  " << lines.front() << (lines.size() > 1 ? glyph(" …", " ...") : "") << "\n";
    std::cout << "  Recipients: " << (rec.empty() ? "(none)" : rec) << "\n";
  }
  return 0;
}

int cmd_mark_read(Context& ctx, const std::vector<std::string>& ids, bool all) {
  if (ids.empty() && !all) throw UsageError("thrum message read: give message ids, or --all");
  auto s = open_session(ctx);
  json params = {{"caller_agent_id", s.agent}};
  if (all)
    params["all"] = true;
  else
    params["message_ids"] = ids;
  json r = s.client.call("message.markRead", params);
  if (ctx.g.json) {
    print_json(r);
    return 0;
  }
  for (const auto& id : r["not_in_inbox"])
    std::cerr << "warning: " << id.get<std::string>() << " is not in @" << s.agent << "'s inbox\n";
  int n = r.value("marked_count", 0);
  if (all && n == 0) {
    std::cout << "No unread messages.\n";
  } else {
    std::cout << ok_mark() << " Marked " << n << (n == 1 ? " message" : " messages")
              << " as read\n";
  }
  return (!r["not_in_inbox"].empty() && n == 0) ? 1 : 0;
}

int cmd_wait(Context& ctx, const std::string& timeout) {
  auto ms = parse_duration(timeout, "--timeout");
  auto s = open_session(ctx);
  json r = s.client.call("message.wait", {{"caller_agent_id", s.agent}, {"timeout_ms", ms.count()}},
                         ms + 10s);
  const bool got = r.value("status", "") == "received";
  if (ctx.g.json) {
    print_json_line(r);  // JSON Lines like every streaming command: one line, flushed
    return got ? 0 : 1;
  }
  if (!got) {
    std::cerr << "NO_MESSAGES_TIMEOUT " << glyph("—", "--")
              << " re-run thrum wait to continue listening\n";
    return 1;
  }
  std::cout << "MESSAGES_RECEIVED\n";
  for (const auto& m : r["messages"])
    std::cout << glyph("●", "*") << " " << m.value("message_id", "") << "  @"
              << m.value("author", "") << ": " << m.value("preview", "") << "\n";
  return 0;
}

int cmd_team(Context& ctx, bool all) {
  auto paths = require_repo(ctx);
  RpcClient client(paths.sock);
  // The table needs four fields of each member: the summary view spares the daemon building,
  // and this process parsing, the rest (a few hundred KB with 1,000 proxies).
  json r = client.call("team.list",
                       {{"include_offline", all}, {"view", ctx.g.json ? "full" : "summary"}});
  if (ctx.g.json) {
    print_json(r);
    return 0;
  }
  const auto& members = r["members"];
  if (members.empty()) {
    std::cout << (all ? "No agents registered. Use 'thrum quickstart' to register one.\n"
                      : "No active agents. Use --all to include offline agents.\n");
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "ROLE", "STATUS"}};
  for (const auto& m : members) {
    std::string status = m.value("status", "");
    if (!m.value("is_local", true)) status += " (via peer)";
    rows.push_back({m.value("agent_id", ""), m.value("role", ""), status});
  }
  std::cout << render_table(rows);
  std::fflush(stdout);
  return 0;
}

}  // namespace

void add_messaging_commands(CLI::App& app, Context& ctx) {
  auto qa = std::make_shared<QuickstartArgs>();
  auto* qs = app.add_subcommand("quickstart", "Register an agent and start its session");
  qs->add_option("--name", qa->name, "Agent name (a-z 0-9 _ -)")->required();
  qs->add_option("--role", qa->role, "Agent role, e.g. coordinator, reviewer")->required();
  qs->add_option("--module", qa->module, "What the agent works on");
  qs->add_option("--intent", qa->intent, "What the agent is doing now");
  qs->add_option("--display", qa->display, "Display name");
  qs->callback([&ctx, qa] { ctx.action = [&ctx, qa] { return cmd_quickstart(ctx, *qa); }; });

  app.add_subcommand("whoami", "Show the agent this CLI acts as")->callback([&ctx] {
    ctx.action = [&ctx] { return cmd_whoami(ctx); };
  });

  auto sa = std::make_shared<SendArgs>();
  auto* send = app.add_subcommand("send", "Send a message");
  send->add_option("message", sa->message, "Message text ('-' reads stdin)");
  send->add_option("--to", sa->to, "@name, @prefix:name (an agent on a peer) or @everyone");
  send->add_flag("--broadcast", sa->broadcast, "Send to every agent (same as --to @everyone)");
  send->add_flag("--stdin", sa->from_stdin, "Read the message text from stdin");
  send->callback([&ctx, sa] { ctx.action = [&ctx, sa] { return cmd_send(ctx, *sa); }; });

  auto reply_parent = std::make_shared<std::string>();
  auto reply_text = std::make_shared<std::string>();
  auto reply_stdin = std::make_shared<bool>(false);
  auto* reply = app.add_subcommand("reply", "Reply to a message (to its author, in its thread)");
  reply->add_option("message_id", *reply_parent, "The message to reply to")->required();
  reply->add_option("message", *reply_text, "Reply text ('-' reads stdin)");
  reply->add_flag("--stdin", *reply_stdin, "Read the reply text from stdin");
  reply->callback([&ctx, reply_parent, reply_text, reply_stdin] {
    ctx.action = [&ctx, reply_parent, reply_text, reply_stdin] {
      return cmd_reply(ctx, *reply_parent, *reply_text, *reply_stdin);
    };
  });

  auto inbox_unread = std::make_shared<bool>(false);
  auto inbox_limit = std::make_shared<int>(20);
  auto* inbox = app.add_subcommand("inbox", "Show my messages, newest first (marks them read)");
  inbox->add_flag("--unread", *inbox_unread, "Only unread messages; does not mark them read");
  inbox->add_option("--limit", *inbox_limit, "How many to show (default 20)")
      ->check(CLI::Range(1, 1000));
  inbox->callback([&ctx, inbox_unread, inbox_limit] {
    ctx.action = [&ctx, inbox_unread, inbox_limit] {
      return cmd_inbox(ctx, *inbox_unread, *inbox_limit);
    };
  });

  auto sent_limit = std::make_shared<int>(20);
  auto sent_failed = std::make_shared<bool>(false);
  auto* sent = app.add_subcommand(
      "sent",
      "Show what I sent, with each recipient's state: queued, delivered, read or failed: <reason>");
  sent->add_option("--limit", *sent_limit, "How many to show (default 20)")
      ->check(CLI::Range(1, 1000));
  sent->add_flag("--failed", *sent_failed,
                 "Only messages with a failed delivery (refused by the peer, or dropped)");
  sent->callback([&ctx, sent_limit, sent_failed] {
    ctx.action = [&ctx, sent_limit, sent_failed] {
      return cmd_sent(ctx, *sent_limit, *sent_failed);
    };
  });

  auto* message = app.add_subcommand("message", "Act on messages");
  message->require_subcommand(1);
  auto read_ids = std::make_shared<std::vector<std::string>>();
  auto read_all = std::make_shared<bool>(false);
  auto* read = message->add_subcommand("read", "Mark messages as read");
  read->add_option("ids", *read_ids, "Message ids");
  read->add_flag("--all", *read_all, "Mark every message in my inbox read");
  read->callback([&ctx, read_ids, read_all] {
    ctx.action = [&ctx, read_ids, read_all] { return cmd_mark_read(ctx, *read_ids, *read_all); };
  });

  auto wait_timeout = std::make_shared<std::string>("30s");
  auto* wait = app.add_subcommand(
      "wait",
      "Block until a message for me arrives (--json: one JSON Lines document, flushed at once)");
  wait->add_option("--timeout", *wait_timeout, "How long to wait (e.g. 30s, 5m; default 30s)");
  wait->callback([&ctx, wait_timeout] {
    ctx.action = [&ctx, wait_timeout] { return cmd_wait(ctx, *wait_timeout); };
  });

  auto team_all = std::make_shared<bool>(false);
  auto* team = app.add_subcommand("team", "List agents (and proxies for peers' agents)");
  team->add_flag("--all", *team_all, "Include offline agents");
  team->callback(
      [&ctx, team_all] { ctx.action = [&ctx, team_all] { return cmd_team(ctx, *team_all); }; });
}

}  // namespace thrum::cli
