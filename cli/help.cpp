#include "help.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace thrum::cli {
namespace {

struct EnvVar {
  const char* name;
  const char* what;
  std::vector<std::string> commands;  ///< command paths it affects; empty: every command
};

const std::vector<EnvVar>& env_table() {
  static const std::vector<std::string> kDaemonStart{"daemon start", "daemon restart",
                                                     "daemon run"};
  static const std::vector<std::string> kAgent{"quickstart", "whoami", "send",    "reply",
                                               "inbox",      "sent",   "message", "wait"};
  static const std::vector<EnvVar> kTable = {
      {"THRUM_HOME", "the repo to use when none is found from the current directory", {}},
      {"THRUM_LOG_LEVEL", "daemon log level: trace, debug, info (default), warn, error",
       kDaemonStart},
      {"THRUM_WS_PORT",
       "the WebSocket port for this start (wins over daemon.ws_port)",
       {"daemon start", "daemon run"}},
      {"THRUM_STORE_COMMIT",
       "where the store commits: loop (default: on the event loop, var/thrum.db locked to "
       "the daemon) or thread (a writer thread; the loop keeps serving during fsync, and "
       "other processes may open the database)",
       kDaemonStart},
      {"THRUM_WAL_BATCH",
       "on (default): each commit's WAL pages go to the file in one write; off: two writes "
       "per page, as SQLite does by itself",
       kDaemonStart},
      {"THRUM_POLICY",
       "operator policy file to use instead of /etc/thrum/transports.yaml (read again on "
       "SIGHUP; start warns when it is not the previous daemon's)",
       {"daemon start", "daemon restart", "daemon run", "plugins"}},
      {"THRUM_PLUGIN_PATH",
       "more plugin directories, colon-separated (unless the policy sets "
       "plugin_dirs)",
       {"daemon start", "daemon restart", "daemon run", "plugins"}},
      {"XDG_RUNTIME_DIR",
       "where the daemon registry lives: $XDG_RUNTIME_DIR/thrum/daemons, else "
       "/tmp/thrum-<uid>/daemons",
       {"daemon"}},
      {"NOTIFY_SOCKET",
       "systemd's readiness socket (Type=notify): READY=1 once serving",
       {"daemon run"}},
      {"THRUM_NAME", "the agent this CLI acts as (instead of the worktree's identity file)",
       kAgent},
      {"THRUM_AGENT_PID",
       "the agent's process id, used to tell whether the agent is alive",
       {"quickstart"}},
      {"THRUM_TS_AUTHKEY",
       "the tailscale auth key, instead of prompting for it",
       {"peer add", "peer join"}},
      {"COLUMNS", "output width for tables", {"inbox", "sent", "team", "peer"}},
  };
  return kTable;
}

bool related(const std::string& a, const std::string& b) {
  auto under = [](const std::string& x, const std::string& prefix) {
    return x.size() > prefix.size() && x.compare(0, prefix.size(), prefix) == 0 &&
           x[prefix.size()] == ' ';
  };
  return a == b || under(a, b) || under(b, a);
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

const char* kGlobalFlags =
    "Global flags (every command, before or after it):\n"
    "  --json              Print one JSON document on stdout\n"
    "  -q, --quiet         Print less\n"
    "  --repo DIR          Repository to act on (default: nearest with .thrum/)\n"
    "  -h, --help          Help; also 'thrum help <command>'\n";

std::vector<const CLI::App*> children(const CLI::App* app) {
  auto subs = app->get_subcommands([](const CLI::App*) { return true; });
  std::vector<const CLI::App*> out;
  for (const auto* s : subs)
    if (!s->get_name().empty()) out.push_back(s);
  return out;
}

const CLI::App* child(const CLI::App* app, const std::string& name) {
  for (const auto* c : children(app))
    if (c->get_name() == name) return c;
  return nullptr;
}

std::string footer_for(const std::vector<std::string>& path) {
  std::string out = kGlobalFlags;
  auto env = environment_for(path);
  if (!env.empty()) {
    out += "\nEnvironment:\n";
    for (const auto& line : env) out += "  " + line + "\n";
  }
  out += "\nMore: thrum help <command>, man thrum";
  return out;
}

void set_footers(CLI::App* app, std::vector<std::string> path) {
  app->footer(footer_for(path));
  for (auto* sub : app->get_subcommands([](CLI::App* a) { return !a->get_name().empty(); })) {
    auto p = path;
    p.push_back(sub->get_name());
    set_footers(sub, p);
  }
}

/// Every command path with the words that may follow it (subcommands, then long options).
void collect_words(const CLI::App* app, const std::string& path,
                   std::vector<std::pair<std::string, std::vector<std::string>>>& out) {
  std::vector<std::string> words;
  if (app->get_name() == "completion") words = {"bash", "zsh"};
  for (const auto* c : children(app))
    if (!c->get_group().empty()) words.push_back(c->get_name());
  for (const auto* o : app->get_options()) {
    for (const auto& l : o->get_lnames()) words.push_back("--" + l);
  }
  for (const char* g : {"--json", "--quiet", "--repo", "--help"})
    if (std::find(words.begin(), words.end(), g) == words.end()) words.push_back(g);
  out.emplace_back(path, words);
  for (const auto* c : children(app))
    if (!c->get_group().empty())
      collect_words(c, path.empty() ? c->get_name() : path + " " + c->get_name(), out);
}

std::string completion_functions(const CLI::App& app) {
  std::vector<std::pair<std::string, std::vector<std::string>>> table;
  collect_words(&app, "", table);
  std::ostringstream s;
  s << "_thrum_words() {\n  case \"$1\" in\n";
  for (const auto& [path, words] : table)
    s << "    \"" << path << "\") echo \"" << join(words, " ") << "\" ;;\n";
  s << "  esac\n}\n_thrum_is_cmd() {\n  case \"$1\" in\n   ";
  bool first = true;
  for (const auto& [path, words] : table) {
    if (path.empty()) continue;
    s << (first ? " " : "|") << "\"" << path << "\"";
    first = false;
  }
  s << ") return 0 ;;\n  esac\n  return 1\n}\n";
  return s.str();
}

std::string bash_completion(const CLI::App& app) {
  std::ostringstream s;
  s << "# bash completion for thrum (generated by 'thrum completion bash'; " THRUM_VERSION ")\n"
    << completion_functions(app)
    << "_thrum() {\n"
       "  local cur prev cmdpath=\"\" w i\n"
       "  cur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
       "  prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
       "  if [ \"$prev\" = \"--repo\" ]; then COMPREPLY=($(compgen -d -- \"$cur\")); return; fi\n"
       "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
       "    w=\"${COMP_WORDS[i]}\"\n"
       "    case \"$w\" in --repo) ((i++)); continue ;; -*) continue ;; esac\n"
       "    if _thrum_is_cmd \"${cmdpath:+$cmdpath }$w\"; then cmdpath=\"${cmdpath:+$cmdpath "
       "}$w\"; "
       "fi\n"
       "  done\n"
       "  COMPREPLY=($(compgen -W \"$(_thrum_words \"$cmdpath\")\" -- \"$cur\"))\n"
       "}\n"
       "complete -F _thrum thrum\n";
  return s.str();
}

std::string zsh_completion(const CLI::App& app) {
  std::ostringstream s;
  s << "#compdef thrum\n"
       "# zsh completion for thrum (generated by 'thrum completion zsh'; " THRUM_VERSION ")\n"
    << completion_functions(app)
    << "_thrum_main() {\n"
       "  local cmdpath=\"\" w i\n"
       "  if [[ \"${words[CURRENT-1]}\" == --repo ]]; then _files -/; return; fi\n"
       "  for ((i = 2; i < CURRENT; i++)); do\n"
       "    w=\"${words[i]}\"\n"
       "    case \"$w\" in --repo) ((i++)); continue ;; -*) continue ;; esac\n"
       "    if _thrum_is_cmd \"${cmdpath:+$cmdpath }$w\"; then cmdpath=\"${cmdpath:+$cmdpath "
       "}$w\"; "
       "fi\n"
       "  done\n"
       "  local -a cands\n"
       "  cands=(${=$(_thrum_words \"$cmdpath\")})\n"
       "  compadd -- $cands\n"
       "}\n"
       "if [[ \"${funcstack[1]}\" == _thrum ]]; then _thrum_main \"$@\"; else compdef _thrum_main "
       "thrum; fi\n";
  return s.str();
}

// ---- man pages ------------------------------------------------------------------------------

std::string roff_escape(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else if ((c == '.' || c == '\'') && (i == 0 || in[i - 1] == '\n')) {
      out += "\\&";
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}

std::string option_synopsis(const CLI::Option* o) {
  std::string names;
  for (const auto& sn : o->get_snames()) names += (names.empty() ? "-" : ", -") + sn;
  for (const auto& ln : o->get_lnames()) names += (names.empty() ? "--" : ", --") + ln;
  if (o->get_positional()) names = o->get_name();
  if (o->get_type_size_max() > 0 && !o->get_positional()) names += " " + o->get_type_name();
  return names;
}

void man_commands(std::ostringstream& s, const CLI::App* app, const std::string& path) {
  for (const auto* c : children(app)) {
    if (c->get_group().empty()) continue;
    const std::string full = path + " " + c->get_name();
    s << ".SS \"" << roff_escape(full) << "\"\n" << roff_escape(c->get_description()) << "\n";
    for (const auto* o : c->get_options()) {
      if (o->get_lnames().size() == 1 && o->get_lnames()[0] == "help") continue;
      s << ".TP\n.B " << roff_escape(option_synopsis(o)) << "\n"
        << roff_escape(o->get_description()) << "\n";
    }
    man_commands(s, c, full);
  }
}

std::string man_page(const CLI::App& root, const std::vector<std::string>& path) {
  const CLI::App* app = &root;
  for (const auto& p : path) app = child(app, p);
  std::string title = "thrum";
  for (const auto& p : path) title += "-" + p;
  std::string upper = title;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  const std::string cmd = "thrum" + (path.empty() ? "" : " " + join(path, " "));
  std::ostringstream s;
  s << ".\\\" Generated by 'thrum manpage' from the command tree; do not edit.\n"
    << ".TH " << upper << " 1 \"\" \"thrum " THRUM_VERSION "\" \"Thrum Manual\"\n"
    << ".SH NAME\n"
    << roff_escape(title) << " \\- "
    << roff_escape(path.empty() ? "messaging between AI agents, across repos and machines"
                                : app->get_description())
    << "\n.SH SYNOPSIS\n.B " << roff_escape(cmd) << "\n"
    << (children(app).empty() ? "[\\fIoptions\\fR]\n" : "\\fIcommand\\fR [\\fIoptions\\fR]\n")
    << ".SH DESCRIPTION\n"
    << roff_escape(path.empty() ? root.get_description() : app->get_description()) << "\n";
  if (path.empty()) {
    s << ".PP\nEach command has its own page: ";
    bool first = true;
    for (const auto* c : children(app)) {
      if (c->get_group().empty()) continue;
      s << (first ? "" : ", ") << "\\fBthrum\\-" << roff_escape(c->get_name()) << "\\fR(1)";
      first = false;
    }
    s << ".\n";
  }
  bool header = false;
  for (const auto* o : app->get_options()) {
    if (o->get_lnames().size() == 1 && o->get_lnames()[0] == "help") continue;
    if (!header) s << ".SH OPTIONS\n";
    header = true;
    s << ".TP\n.B " << roff_escape(option_synopsis(o)) << "\n"
      << roff_escape(o->get_description()) << "\n";
  }
  if (!children(app).empty()) {
    s << ".SH COMMANDS\n";
    man_commands(s, app, cmd);
  }
  s << ".SH GLOBAL FLAGS\n";
  for (const char* f : {"--json\nPrint one JSON document on stdout", "-q, --quiet\nPrint less",
                        "--repo DIR\nRepository to act on (default: nearest with .thrum/)",
                        "-h, --help\nHelp for the command; also thrum help <command>"}) {
    std::string t = f;
    auto nl = t.find('\n');
    s << ".TP\n.B " << roff_escape(t.substr(0, nl)) << "\n"
      << roff_escape(t.substr(nl + 1)) << "\n";
  }
  auto env = environment_for(path);
  if (!env.empty()) {
    s << ".SH ENVIRONMENT\n";
    for (const auto& line : env) {
      auto sp = line.find(' ');
      std::string rest = line.substr(sp);
      rest.erase(0, rest.find_first_not_of(' '));
      s << ".TP\n.B " << line.substr(0, sp) << "\n" << roff_escape(rest) << "\n";
    }
  }
  if (path == std::vector<std::string>{"daemon"}) {
    // This page is also the one of the `thrum-daemon` executable, which users never run by hand.
    s << ".SH THE thrum\\-daemon EXECUTABLE\n"
         "\\fBthrum daemon start\\fR and \\fBthrum daemon run\\fR execute \\fBthrum\\-daemon run "
         "\\-\\-repo\\fR \\fIDIR\\fR beside \\fBthrum\\fR; \\fBthrum plugins\\fR asks it to load "
         "plugins. In the foreground (\\fBthrum daemon run\\fR, the systemd user unit "
         "\\fBthrum@.service\\fR) it logs to stderr; started by \\fBthrum daemon start\\fR it logs "
         "to "
         "\\fI.thrum/var/daemon.log\\fR, rotated at \\fBdaemon.log_max_bytes\\fR (default 10 "
         "MiB) with \\fBdaemon.log_files\\fR old files kept (default 4), both set in "
         "\\fI.thrum/config.json\\fR.\n"
         ".SH SIGNALS\n"
         ".TP\n.B SIGTERM, SIGINT\nStop; every queued write is committed first.\n"
         ".TP\n.B SIGHUP\nReopen the log file and read the operator policy again: a transport it "
         "newly disables stops (its peers show \\fBdisabled\\fR), a newly enabled one starts. A "
         "policy that does not parse is logged with its file and line, and the previous policy "
         "stays "
         "in force.\n";
  }
  s << ".SH SEE ALSO\n"
    << (path.empty() ? "" : "\\fBthrum\\fR(1), ")
    << "the README and docs/ in /usr/share/doc/thrum.\n";
  return s.str();
}

int write_man_pages(const CLI::App& app, const std::string& dir) {
  std::vector<std::vector<std::string>> pages{{}};
  for (const auto* c : children(&app))
    if (!c->get_group().empty()) pages.push_back({c->get_name()});
  std::filesystem::create_directories(dir);
  for (const auto& p : pages) {
    std::string name = "thrum";
    for (const auto& w : p) name += "-" + w;
    std::ofstream out(std::filesystem::path(dir) / (name + ".1"));
    out << man_page(app, p);
    if (!out) throw Error("cannot write " + dir + "/" + name + ".1");
  }
  return 0;
}

}  // namespace

std::vector<std::string> environment_for(const std::vector<std::string>& path) {
  const std::string cmd = join(path, " ");
  std::vector<std::string> out;
  for (const auto& e : env_table()) {
    bool applies = e.commands.empty() || cmd.empty();
    for (const auto& c : e.commands) applies = applies || related(cmd, c);
    if (!applies) continue;
    std::string line = e.name;
    line.resize(std::max<size_t>(line.size() + 2, 20), ' ');
    out.push_back(line + e.what);
  }
  return out;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::optional<std::string> unknown_command(const CLI::App& app, int argc, char** argv) {
  const CLI::App* cur = &app;
  std::vector<std::string> path;
  for (int i = 1; i < argc; ++i) {
    const std::string w = argv[i];
    if (w == "--") return std::nullopt;
    if (w == "--repo") {
      ++i;
      continue;
    }
    if (!w.empty() && w[0] == '-') continue;
    auto subs = children(cur);
    if (subs.empty()) return std::nullopt;  // a leaf: the rest are its arguments
    if (const auto* next = child(cur, w)) {
      cur = next;
      path.push_back(w);
      continue;
    }
    // The nearest visible command here, or one level down ("thrum start" -> "daemon start").
    std::string best;
    std::size_t best_d = std::string::npos;
    for (const auto* c : subs) {
      if (c->get_group().empty()) continue;
      std::size_t d = edit_distance(w, c->get_name());
      if (d < best_d) {
        best_d = d;
        best = c->get_name();
      }
      for (const auto* g : children(c)) {
        if (g->get_group().empty()) continue;
        std::size_t dg = edit_distance(w, g->get_name()) + 1;
        if (dg < best_d) {
          best_d = dg;
          best = c->get_name() + " " + g->get_name();
        }
      }
    }
    const std::string where = "thrum" + (path.empty() ? "" : " " + join(path, " "));
    std::string msg = "Error: unknown command \"" + w + "\" for '" + where + "'.";
    if (!best.empty() && best_d <= std::max<std::size_t>(2, w.size() / 2))
      msg += " Did you mean '" + where + " " + best + "'?";
    msg += "\nRun '" + where + " --help' for the list of commands.";
    return msg;
  }
  return std::nullopt;
}

void add_help_commands(CLI::App& app, Context& ctx) {
  auto* help = app.add_subcommand("help", "Show the help of a command: thrum help daemon start");
  auto words = std::make_shared<std::vector<std::string>>();
  help->add_option("command", *words, "The command (and subcommand) to explain");
  help->callback([&app, &ctx, words] {
    ctx.action = [&app, words]() -> int {
      const CLI::App* target = &app;
      std::string name = "thrum";
      for (const auto& w : *words) {
        const CLI::App* next = child(target, w);
        if (!next) {
          char* argv[64] = {const_cast<char*>("thrum")};
          int n = 1;
          for (const auto& x : *words)
            if (n < 63) argv[n++] = const_cast<char*>(x.c_str());
          auto msg = unknown_command(app, n, argv);
          throw UsageError(msg ? *msg : "unknown command " + w);
        }
        name += " " + w;
        target = next;
      }
      // The formatter directly: App::help() would follow the parsed `help` subcommand.
      std::cout << target->get_formatter()->make_help(target, name, CLI::AppFormatMode::Normal);
      return 0;
    };
  });

  auto* completion = app.add_subcommand("completion", "Print the shell completion script");
  auto shell = std::make_shared<std::string>();
  completion->add_option("shell", *shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  completion->footer(
      "Install: thrum completion bash > ~/.local/share/bash-completion/completions/thrum\n"
      "         thrum completion zsh > \"${fpath[1]}/_thrum\"");
  completion->callback([&app, &ctx, shell] {
    ctx.action = [&app, shell]() -> int {
      std::cout << (*shell == "bash" ? bash_completion(app) : zsh_completion(app));
      return 0;
    };
  });

  // Hidden: the build writes the man pages with it (cli/CMakeLists.txt).
  auto* manpage = app.add_subcommand("manpage", "Write the man pages into DIR")->group("");
  auto dir = std::make_shared<std::string>();
  manpage->add_option("dir", *dir, "Output directory")->required();
  manpage->callback([&app, &ctx, dir] {
    ctx.action = [&app, dir]() -> int { return write_man_pages(app, *dir); };
  });

  set_footers(&app, {});
}

}  // namespace thrum::cli
