// `thrum mcp serve`: an MCP server on stdio for one agent (docs/agents.md). Wires the units:
// stdin lines → Session (mcp_session), tools → the daemon (mcp_tools, one connection per
// call), the daemon's pushes → channel notifications (mcp_push). stdout carries only MCP
// messages; diagnostics go to stderr.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <thread>

#include "cli.hpp"
#include "client.hpp"
#include "identity.hpp"
#include "mcp_push.hpp"
#include "mcp_session.hpp"
#include "mcp_stdio.hpp"
#include "mcp_tools.hpp"
#include "thrum/common/bounded_json.hpp"

namespace thrum::cli {

namespace {

/// A client message larger than this is refused (a tool call carries one message body).
constexpr size_t kMaxClientLine = 8u << 20;

int serve(const Context& ctx, const std::string& agent_flag) {
  ::signal(SIGPIPE, SIG_IGN);  // a client that went away is a failed write, not a kill
  std::string agent;
  core::RepoPaths paths;
  try {
    paths = require_repo(ctx);
    agent = agent_flag.empty() ? current_agent(paths) : agent_flag;
    RpcClient probe(paths.sock);
    probe.call("agent.whoami", {{"caller_agent_id", agent}});
  } catch (const std::exception& e) {
    std::cerr << "thrum mcp serve: " << e.what() << "\n";
    return 1;
  }

  const auto sock = paths.sock;
  mcp::Tools tools(
      [sock](const std::string& method, const json& params, std::chrono::milliseconds timeout) {
        RpcClient c(sock);
        return c.call(method, params, timeout);
      },
      agent);
  mcp::LineWriter out(STDOUT_FILENO);
  mcp::Session session(
      tools, [&out](const json& msg) { out.write_line(core::dump_compact(msg)); },
      [](std::function<void()> job) { std::thread(std::move(job)).detach(); });
  mcp::PushListener push(sock, agent, [&session](const json& m) { session.message_arrived(m); });
  try {
    push.start();
  } catch (const std::exception& e) {
    std::cerr << "thrum mcp serve: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "thrum mcp serve: serving @" << agent << " on stdio\n";

  mcp::LineSplitter lines(kMaxClientLine);
  char chunk[65536];
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (auto& l : lines.feed(std::string_view(chunk, static_cast<size_t>(n)))) {
      if (l.too_long)
        session.line_too_long();
      else
        session.handle_line(l.text);
    }
  }
  if (auto last = lines.finish()) session.handle_line(last->text);
  push.stop();
  // The client closed stdin: the session is over. A wait_for_message still blocked on its
  // own thread has nobody to answer, so leave without joining it.
  std::cout.flush();
  ::_exit(0);
}

}  // namespace

void add_mcp_commands(CLI::App& app, Context& ctx) {
  auto* mcp = app.add_subcommand("mcp", "Model Context Protocol server for AI agents");
  mcp->require_subcommand(1);
  auto agent = std::make_shared<std::string>();
  auto* serve_cmd = mcp->add_subcommand(
      "serve", "Serve MCP on stdio as one agent, pushing its new messages (docs/agents.md)");
  serve_cmd->add_option("--agent", *agent, "Agent to act as (default: $THRUM_NAME, as the CLI)");
  serve_cmd->callback([&ctx, agent] { ctx.action = [&ctx, agent] { return serve(ctx, *agent); }; });
}

}  // namespace thrum::cli
