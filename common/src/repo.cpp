#include "thrum/common/repo.hpp"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "thrum/common/bounded_json.hpp"
#include "thrum/common/fs_util.hpp"

namespace thrum::core {
namespace fs = std::filesystem;

namespace {

/// FNV-1a, 64 bits: names the socket of a repo path (not a secret, just short and stable).
std::string path_hash(const std::string& s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

fs::path relocated_socket_path(const fs::path& root) {
  const std::string name = path_hash(root.string()) + ".sock";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg == '/') {
    fs::path p = fs::path(xdg) / "thrum" / name;
    if (p.native().size() <= max_socket_path()) return p;
  }
  return fs::path("/tmp") / ("thrum-" + std::to_string(::geteuid())) / name;
}

namespace {

/// The socket the daemon recorded in var/sock.path, when it is a usable path.
std::optional<fs::path> recorded_socket(const fs::path& record) {
  std::optional<std::string> text = read_file_or_nothing(record);
  if (!text) return std::nullopt;
  while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
  if (text->empty() || text->front() != '/' || text->size() > max_socket_path())
    return std::nullopt;
  return fs::path(*text);
}

}  // namespace

std::size_t max_socket_path() {
  return sizeof(sockaddr_un{}.sun_path) - 1;
}

std::string prepare_socket_dir(const RepoPaths& paths) {
  if (!paths.socket_relocated()) return "";
  const fs::path dir = paths.sock.parent_path();
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return "cannot create the socket directory " + dir.string() + ": " + std::strerror(errno) +
           " (the repo path is too long for a socket in .thrum/var/)";
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0)
    return "cannot use the socket directory " + dir.string() + ": " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0)
    return "refusing the socket directory " + dir.string() +
           ": it must be a directory owned by you with mode 0700 (remove it, or set "
           "XDG_RUNTIME_DIR to a private directory)";
  return "";
}

RepoPaths RepoPaths::for_root(const fs::path& root_in) {
  RepoPaths p;
  std::error_code ec;
  p.root = fs::weakly_canonical(fs::absolute(root_in), ec);
  if (ec) p.root = fs::absolute(root_in);
  p.thrum = p.root / ".thrum";
  p.config = p.thrum / "config.json";
  p.identities = p.thrum / "identities";
  p.env_file = p.thrum / ".env";
  p.var = p.thrum / "var";
  p.sock = p.var / "thrum.sock";
  p.sock_record = p.var / "sock.path";
  if (p.sock.native().size() > max_socket_path())
    p.sock = recorded_socket(p.sock_record).value_or(relocated_socket_path(p.root));
  p.pid = p.var / "thrum.pid";
  p.lock = p.var / "thrum.lock";
  p.ws_port = p.var / "ws.port";
  p.ws_port_last = p.var / "ws.port.last";
  p.db = p.var / "thrum.db";
  p.peers = p.var / "peers.json";
  p.log = p.var / "daemon.log";
  p.policy_source = p.var / "policy.source";
  p.tls = p.var / "tls";
  p.tsnet = p.var / "tsnet";
  return p;
}

std::optional<fs::path> main_worktree_of(const fs::path& dir) {
  // A linked worktree's `.git` is a file "gitdir: <main>/.git/worktrees/<name>", whose
  // `commondir` names the main repository's git dir (usually "../..").
  std::error_code ec;
  if (!fs::is_regular_file(dir / ".git", ec)) return std::nullopt;
  std::optional<std::string> text = read_file_or_nothing(dir / ".git");
  if (!text || text->rfind("gitdir:", 0) != 0) return std::nullopt;
  std::string gitdir = text->substr(7);
  auto trim = [](std::string& v) {
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
    while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.erase(0, 1);
  };
  trim(gitdir);
  fs::path g = fs::path(gitdir).is_absolute() ? fs::path(gitdir) : dir / gitdir;
  std::optional<std::string> common = read_file_or_nothing(g / "commondir");
  if (!common) return std::nullopt;
  trim(*common);
  fs::path c = fs::path(*common).is_absolute() ? fs::path(*common) : g / *common;
  c = fs::weakly_canonical(c, ec);
  if (ec || c.filename() != ".git") return std::nullopt;  // a bare repo has no main worktree
  return c.parent_path();
}

std::optional<fs::path> find_repo_root(const std::optional<fs::path>& explicit_repo,
                                       const fs::path& start) {
  if (explicit_repo) return fs::absolute(*explicit_repo);
  std::error_code ec;
  for (fs::path dir = fs::absolute(start); !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_directory(dir / ".thrum", ec)) return dir;
    // A linked worktree (`git worktree add`) has no .thrum/ of its own: it uses its main
    // worktree's daemon.
    if (auto main = main_worktree_of(dir); main && fs::is_directory(*main / ".thrum", ec))
      return *main;
    if (dir == dir.root_path()) break;
  }
  if (const char* home = std::getenv("THRUM_HOME"); home && *home) return fs::path(home);
  return std::nullopt;
}

std::optional<unsigned short> read_port_file(const fs::path& path) {
  std::optional<std::string> text = read_file_or_nothing(path);
  if (!text) return std::nullopt;
  long v = 0;
  bool any = false;
  for (char c : *text) {
    if (c >= '0' && c <= '9') {
      v = v * 10 + (c - '0');
      any = true;
      if (v > 65535) return std::nullopt;
    } else if (c == '\n' || c == ' ' || c == '\r' || c == '\t') {
      continue;
    } else {
      return std::nullopt;
    }
  }
  if (!any || v < 1) return std::nullopt;
  return static_cast<unsigned short>(v);
}

std::string recorded_daemon_id(const fs::path& root) {
  std::optional<std::string> text = read_file_or_nothing(RepoPaths::for_root(root).config);
  if (!text) return "";
  auto doc = parse_bounded(*text, nullptr, 16, 1 << 20);
  if (!doc || !doc->is_object()) return "";
  auto id = doc->find("identity");
  if (id == doc->end() || !id->is_object()) return "";
  auto d = id->find("daemon_id");
  return d != id->end() && d->is_string() ? d->get<std::string>() : "";
}

}  // namespace thrum::core
