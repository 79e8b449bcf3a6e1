// Issue 13 items 7-10: deep repo paths (socket relocation), git worktrees, human output a
// person can read in a pipe, a terminal or LANG=C, and the README's "Using it" block run as
// written. Real daemons in temp repos, the real CLI.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/peer_env.hpp"
#include "support/helpers.hpp"

#ifndef THRUM_SOURCE_DIR
#error "THRUM_SOURCE_DIR must name the source tree (README.md)"
#endif

namespace thrum::test {
namespace {

namespace fs = std::filesystem;

RunResult shell(const std::string& script, const fs::path& cwd,
                std::map<std::string, std::string> env = {}) {
  const char* path = std::getenv("PATH");
  env["PATH"] = fs::path(THRUM_TEST_BINARY).parent_path().string() + ":" + (path ? path : "");
  return run_process("/bin/sh", {"-c", script}, cwd, env, std::nullopt, std::chrono::seconds(90));
}

/// A unix socket file at `p` that nobody listens on (as a daemon killed with -9 leaves it).
void leave_stale_socket(const fs::path& p) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, p.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  ::close(fd);
  ASSERT_TRUE(fs::exists(p));
}

// -- 7. A repo path too long for a socket in .thrum/var/ --------------------------------------

TEST(DeepRepoPath, SocketMovesToThePrivateRuntimeDirAndCliAndDaemonAgree) {
  const std::string deep(120, 'd');
  TempRepo repo("monorepo-" + deep);
  ASSERT_GT((repo.var() / "thrum.sock").string().size(), 108u);
  TempRepo runtime_holder("xdg");  // a private directory for XDG_RUNTIME_DIR
  const fs::path xdg = runtime_holder.root() / "run";
  fs::create_directories(xdg);
  fs::permissions(xdg, fs::perms::owner_all);
  const fs::path dir = xdg / "thrum";
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all);
  const fs::path stale = dir / "0123456789abcdef.sock";
  ASSERT_NO_FATAL_FAILURE(leave_stale_socket(stale));

  ASSERT_NO_FATAL_FAILURE(repo.start_daemon({{"XDG_RUNTIME_DIR", xdg.string()}}));
  const std::string recorded = slurp(repo.var() / "sock.path");
  ASSERT_EQ(recorded.rfind(dir.string() + "/", 0), 0u) << recorded;
  const fs::path sock = recorded.substr(0, recorded.find('\n'));
  EXPECT_TRUE(fs::is_socket(sock)) << sock;
  EXPECT_EQ(file_mode(dir), 0700);
  EXPECT_FALSE(fs::exists(stale)) << "a socket nobody serves is cleaned at start";
  EXPECT_FALSE(fs::exists(repo.var() / "thrum.sock"));

  // The CLI finds it through the record, whatever its own environment says.
  auto qs = repo.thrum({"quickstart", "--name", "deep_agent", "--role", "dev"},
                       {{"XDG_RUNTIME_DIR", "/nonexistent"}});
  EXPECT_EQ(qs.exit_code, 0) << qs.out << qs.err;
  auto st = repo.thrum({"daemon", "status"});
  EXPECT_EQ(st.exit_code, 0) << st.out << st.err;

  ASSERT_NO_FATAL_FAILURE(repo.stop_daemon());
  EXPECT_FALSE(fs::exists(sock)) << "the socket goes with its daemon";
  EXPECT_FALSE(fs::exists(repo.var() / "sock.path"));
}

TEST(DeepRepoPath, WithoutXdgRuntimeDirTheSocketGoesToTmpThrumUid) {
  TempRepo repo("monorepo-" + std::string(120, 'e'));
  ASSERT_NO_FATAL_FAILURE(repo.start_daemon({{"XDG_RUNTIME_DIR", ""}}));
  const std::string recorded = slurp(repo.var() / "sock.path");
  const std::string dir = "/tmp/thrum-" + std::to_string(::geteuid()) + "/";
  EXPECT_EQ(recorded.rfind(dir, 0), 0u) << recorded;
  EXPECT_EQ(file_mode(dir), 0700);
  auto team = repo.thrum({"team"});
  EXPECT_EQ(team.exit_code, 0) << team.out << team.err;
}

TEST(DeepRepoPath, ASocketDirectoryAnotherUserOwnsOrOthersCanEnterIsRefused) {
  // Whoever owns the directory could replace the socket and read every request (a token, a
  // message): the daemon refuses it, names it and says what to do, and does not start.
  if (::geteuid() != 0) GTEST_SKIP() << "chown to another user needs root";
  TempRepo repo("monorepo-" + std::string(120, 'f'));
  TempRepo runtime_holder("xdg-foreign");
  const fs::path xdg = runtime_holder.root() / "run";
  const fs::path dir = xdg / "thrum";
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all);
  ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0) << std::strerror(errno);  // nobody
  auto foreign = repo.thrum({"daemon", "start"}, {{"XDG_RUNTIME_DIR", xdg.string()}});
  EXPECT_NE(foreign.exit_code, 0) << foreign.out;
  EXPECT_NE(foreign.err.find("refusing the socket directory " + dir.string()), std::string::npos)
      << foreign.err;
  EXPECT_NE(foreign.err.find("owned by you with mode 0700"), std::string::npos) << foreign.err;
  EXPECT_FALSE(fs::exists(repo.var() / "ws.port")) << "the daemon did not start";

  ASSERT_EQ(::chown(dir.c_str(), ::geteuid(), ::getegid()), 0);
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  auto open_dir = repo.thrum({"daemon", "start"}, {{"XDG_RUNTIME_DIR", xdg.string()}});
  EXPECT_NE(open_dir.exit_code, 0) << open_dir.out;
  EXPECT_NE(open_dir.err.find("refusing the socket directory"), std::string::npos) << open_dir.err;

  fs::permissions(dir, fs::perms::owner_all);  // made private, it is used
  ASSERT_NO_FATAL_FAILURE(repo.start_daemon({{"XDG_RUNTIME_DIR", xdg.string()}}));
  EXPECT_EQ(slurp(repo.var() / "sock.path").rfind(dir.string() + "/", 0), 0u);
}

// -- 8. A git worktree uses its main worktree's daemon ---------------------------------------

TEST(GitWorktree, LinkedWorktreeUsesTheMainRepositorysDaemon) {
  TempRepo repo("main");
  ASSERT_NO_FATAL_FAILURE(repo.start_daemon());
  const std::string git = "git -c user.email=t@example.invalid -c user.name=t ";
  auto setup = shell(git + "init -q && " + git + "commit -q --allow-empty -m init && " + git +
                         "worktree add -q ../feature",
                     repo.root());
  ASSERT_EQ(setup.exit_code, 0) << setup.out << setup.err;
  const fs::path wt = repo.root().parent_path() / "feature";
  ASSERT_TRUE(fs::is_regular_file(wt / ".git"));

  auto qs = run_thrum({"quickstart", "--name", "feature_agent", "--role", "dev"}, wt,
                      TempRepo::as("feature_agent"));
  ASSERT_EQ(qs.exit_code, 0) << qs.out << qs.err;
  EXPECT_FALSE(fs::exists(wt / ".thrum")) << "the worktree gets no daemon of its own";
  EXPECT_TRUE(fs::exists(repo.root() / ".thrum" / "identities" / "feature_agent.json"));
  auto team = repo.thrum({"team"});
  EXPECT_NE(team.out.find("feature_agent"), std::string::npos) << team.out;

  // Messages between an agent in the worktree and one in the main checkout.
  ASSERT_NO_FATAL_FAILURE(repo.register_agent("lead", "coordinator"));
  auto sent =
      run_thrum({"send", "from the worktree", "--to", "@lead"}, wt, TempRepo::as("feature_agent"));
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err;
  auto inbox = repo.thrum({"--json", "inbox"}, TempRepo::as("lead"));
  EXPECT_NE(inbox.out.find("from the worktree"), std::string::npos) << inbox.out;
  auto who = run_thrum({"whoami"}, wt, TempRepo::as("feature_agent"));
  EXPECT_NE(who.out.find("Worktree:  " + fs::canonical(wt).string()), std::string::npos) << who.out;
}

// -- 9. Human output -------------------------------------------------------------------------

class HumanOutput : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(repo_.start_daemon());
    ASSERT_NO_FATAL_FAILURE(repo_.register_agent("writer", "dev"));
    ASSERT_NO_FATAL_FAILURE(repo_.register_agent("reader", "dev"));
  }
  void send(const std::string& body) {
    auto r = repo_.thrum({"send", "--stdin", "--to", "@reader"}, TempRepo::as("writer"), body);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  /// `thrum inbox --unread` as reader on a pseudo-terminal (script(1)), with `env`.
  RunResult on_tty(const std::map<std::string, std::string>& env) {
    std::map<std::string, std::string> e = env;
    e["THRUM_NAME"] = "reader";
    e["COLUMNS"] = "80";
    return shell("script -qec 'thrum inbox --unread' /dev/null", repo_.root(), e);
  }
  TempRepo repo_{"out"};
};

TEST_F(HumanOutput, PipedInboxKeepsIndentationAndLineBreaksWithoutBoxes) {
  ASSERT_NO_FATAL_FAILURE(send("def f():\n    if x:\n        return 1\n\n  - item"));
  auto r = repo_.thrum({"inbox", "--unread"}, TempRepo::as("reader"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("    def f():\n        if x:\n            return 1\n\n      - item\n"),
            std::string::npos)
      << r.out;
  for (const char* box : {"┌", "│", "└", "─", "\033["})
    EXPECT_EQ(r.out.find(box), std::string::npos) << "box drawing in a pipe: " << r.out;
}

TEST_F(HumanOutput, TerminalGetsBoxesUnlessNoColorOrLangC) {
  ASSERT_NO_FATAL_FAILURE(send("hello 世界 🎉 done"));
  auto utf8 = on_tty({{"LANG", "C.UTF-8"}, {"LC_ALL", ""}, {"LC_CTYPE", ""}, {"NO_COLOR", ""}});
  ASSERT_EQ(utf8.exit_code, 0) << utf8.out << utf8.err;
  EXPECT_NE(utf8.out.find("┌"), std::string::npos) << utf8.out;
  // Wide characters count two columns: every box line ends at the same column.
  std::vector<size_t> widths;
  std::regex box_line("[│┌├└][^\r\n]*[│┐┤┘]");
  for (std::sregex_iterator it(utf8.out.begin(), utf8.out.end(), box_line), end; it != end; ++it) {
    const std::string l = it->str();
    size_t cols = 0;
    for (size_t i = 0; i < l.size();) {
      unsigned char c = static_cast<unsigned char>(l[i]);
      size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      // U+4E16, U+754C (CJK) and U+1F389 (emoji) are wide; the box glyphs are narrow.
      const std::string g = l.substr(i, n);
      cols += (g == "世" || g == "界" || g == "🎉") ? 2 : 1;
      i += n;
    }
    widths.push_back(cols);
  }
  ASSERT_GE(widths.size(), 3u) << utf8.out;
  for (size_t w : widths) EXPECT_EQ(w, widths.front()) << utf8.out;

  for (const auto& env : std::vector<std::map<std::string, std::string>>{
           {{"LANG", "C.UTF-8"}, {"LC_ALL", ""}, {"LC_CTYPE", ""}, {"NO_COLOR", "1"}},
           {{"LANG", "C"}, {"LC_ALL", ""}, {"LC_CTYPE", ""}, {"NO_COLOR", ""}}}) {
    auto plain = on_tty(env);
    ASSERT_EQ(plain.exit_code, 0) << plain.out << plain.err;
    EXPECT_EQ(plain.out.find("┌"), std::string::npos) << plain.out;
    EXPECT_NE(plain.out.find("hello"), std::string::npos) << plain.out;
  }
}

TEST_F(HumanOutput, UnderLangCEveryLineIsAsciiAndWithoutALocaleTheMarksStay) {
  ASSERT_NO_FATAL_FAILURE(send("first line\nsecond line"));
  const auto is_ascii = [](const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; });
  };
  const std::map<std::string, std::string> lang_c = {
      {"LANG", "C"}, {"LC_ALL", ""}, {"LC_CTYPE", ""}, {"THRUM_NAME", "writer"}};
  auto sent = repo_.thrum({"send", "plain please", "--to", "@reader"}, lang_c);
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  EXPECT_EQ(sent.out.rfind("OK Message sent: ", 0), 0u) << sent.out;
  std::map<std::string, std::string> reader = lang_c;
  reader["THRUM_NAME"] = "reader";
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"inbox"}, {"sent"}, {"team"}, {"daemon", "status"}, {"peer", "list"}, {"whoami"}}) {
    auto r = repo_.thrum(args, args.front() == "sent" ? lang_c : reader);
    EXPECT_EQ(r.exit_code, 0) << args.front() << ": " << r.err;
    EXPECT_TRUE(is_ascii(r.out)) << "thrum " << args.front() << " under LANG=C:\n" << r.out;
    EXPECT_TRUE(is_ascii(r.err)) << "thrum " << args.front() << " under LANG=C:\n" << r.err;
  }
  auto wait = repo_.thrum({"wait", "--timeout", "1s"}, {{"LANG", "C"}, {"THRUM_NAME", "writer"}});
  EXPECT_EQ(wait.exit_code, 1) << "nothing arrives for writer: wait times out";
  EXPECT_NE(wait.err.find("NO_MESSAGES_TIMEOUT -- re-run thrum wait"), std::string::npos)
      << wait.err;
  EXPECT_TRUE(is_ascii(wait.err)) << wait.err;
  // No locale at all (a pipe, an agent's shell): the marks are UTF-8 as the docs print them.
  auto marked =
      repo_.thrum({"send", "marks please", "--to", "@reader"},
                  {{"LANG", ""}, {"LC_ALL", ""}, {"LC_CTYPE", ""}, {"THRUM_NAME", "writer"}});
  EXPECT_EQ(marked.out.rfind("\u2713 Message sent: ", 0), 0u) << marked.out;
}

TEST_F(HumanOutput, TeamColumnsSizeToTheLongestName) {
  ASSERT_NO_FATAL_FAILURE(repo_.register_agent("an_agent_with_a_very_long_name_indeed", "rev"));
  auto r = repo_.thrum({"team"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<size_t> role_col;
  for (std::string l; std::getline(lines, l);) {
    std::smatch m;
    if (std::regex_search(l, m, std::regex(R"(^\S+\s+(ROLE|dev|rev)\s)")))
      role_col.push_back(static_cast<size_t>(m.position(1)));
  }
  ASSERT_EQ(role_col.size(), 4u) << r.out;
  for (size_t c : role_col) EXPECT_EQ(c, role_col.front()) << r.out;
  EXPECT_EQ(role_col.front(), std::string("an_agent_with_a_very_long_name_indeed  ").size())
      << r.out;
}

// -- 10. The README's "Using it" block, run exactly as written -------------------------------

TEST(Readme, UsingItRunsAsWritten) {
  const std::string readme = slurp(fs::path(THRUM_SOURCE_DIR) / "README.md");
  const auto section = readme.find("## Using it\n");
  ASSERT_NE(section, std::string::npos);
  const auto open = readme.find("```sh\n", section);
  ASSERT_NE(open, std::string::npos);
  const auto body = open + 6;
  const auto close = readme.find("```\n", body);
  ASSERT_NE(close, std::string::npos);
  const std::string block = readme.substr(body, close - body);
  ASSERT_NE(block.find("thrum init"), std::string::npos) << block;

  TempRepo holder("readme");  // only for a temp dir that is cleaned up
  const fs::path dir = holder.root() / "fresh";
  fs::create_directories(dir);
  // -e: every line must succeed, as a reader following it expects.
  auto r = shell("set -e\n" + block, dir, {{"THRUM_NAME", ""}});
  EXPECT_EQ(r.exit_code, 0) << "README block failed:\n"
                            << block << "\nstdout:\n"
                            << r.out << "\nstderr:\n"
                            << r.err;
  EXPECT_NE(r.out.find("MESSAGES_RECEIVED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("@reviewer_main(read)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("thanks"), std::string::npos) << r.out;
  if (r.exit_code != 0) shell("thrum daemon stop", dir);
}

}  // namespace
}  // namespace thrum::test
