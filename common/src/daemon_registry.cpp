#include "thrum/common/daemon_registry.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include <nlohmann/json.hpp>

#include "thrum/common/bounded_json.hpp"
#include "thrum/common/daemon_lock.hpp"
#include "thrum/common/fs_util.hpp"

namespace thrum::core {
namespace fs = std::filesystem;

namespace {

/// FNV-1a 64: a stable file name per repo path (std::hash is not stable across builds).
std::string path_key(const std::string& s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  static const char* kHex = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<size_t>(i)] = kHex[h & 0xf];
  return out;
}

/// Creates `dir` 0700 and refuses one that another user owns or others can write: entries name
/// repos and pids, and a planted entry must not make `daemon list` talk to someone's socket.
void ensure_private_dir(const fs::path& dir) {
  ensure_dir(dir, 0700);
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0)
    throw std::system_error(errno, std::generic_category(), "stat " + dir.string());
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid())
    throw std::runtime_error(dir.string() + " is not a directory owned by this user; remove it");
}

std::optional<DaemonEntry> read_entry(const fs::path& file) {
  std::optional<std::string> text = read_file_or_nothing(file);
  if (!text) return std::nullopt;
  auto doc = parse_bounded(*text, nullptr, 4, 64 * 1024);
  if (!doc || !doc->is_object()) return std::nullopt;
  const auto& d = *doc;
  DaemonEntry e;
  if (!d.contains("pid") || !d["pid"].is_number_integer()) return std::nullopt;
  if (!d.contains("repo_path") || !d["repo_path"].is_string()) return std::nullopt;
  e.pid = d["pid"].get<int>();
  e.repo_path = d["repo_path"].get<std::string>();
  if (d.contains("ws_port") && d["ws_port"].is_number_unsigned() &&
      d["ws_port"].get<unsigned>() <= 65535)
    e.ws_port = static_cast<unsigned short>(d["ws_port"].get<unsigned>());
  if (d.contains("started_at") && d["started_at"].is_string())
    e.started_at = d["started_at"].get<std::string>();
  if (d.contains("log") && d["log"].is_string()) e.log = d["log"].get<std::string>();
  return e;
}

/// Alive means: the process exists and holds the repo's lock with this pid in its pid file.
bool live(const DaemonEntry& e) {
  if (e.pid <= 0 || !pid_alive(e.pid) || e.repo_path.empty()) return false;
  auto pid = running_daemon(RepoPaths::for_root(e.repo_path));
  return pid && *pid == e.pid;
}

}  // namespace

fs::path DaemonRegistry::default_dir() {
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg == '/')
    return fs::path(xdg) / "thrum" / "daemons";
  return fs::path("/tmp") / ("thrum-" + std::to_string(::geteuid())) / "daemons";
}

fs::path DaemonRegistry::file_for(const std::string& repo_path) const {
  return dir_ / (path_key(repo_path) + ".json");
}

void DaemonRegistry::add(const DaemonEntry& e) const {
  ensure_private_dir(dir_.parent_path());
  ensure_private_dir(dir_);
  const nlohmann::json doc = {{"pid", e.pid},
                              {"repo_path", e.repo_path},
                              {"ws_port", e.ws_port},
                              {"started_at", e.started_at},
                              {"log", e.log}};
  // A runtime file: tmp + rename is enough (no fsync; it is meaningless after a reboot).
  const fs::path file = file_for(e.repo_path);
  const fs::path tmp = file.string() + ".tmp." + std::to_string(::getpid());
  const std::string text = dump_compact(doc) + "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + tmp.string());
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0) {
    const int e2 = ok ? errno : err;
    ::unlink(tmp.c_str());
    throw std::system_error(e2, std::generic_category(), "write " + file.string());
  }
}

void DaemonRegistry::remove(const std::string& repo_path, int pid) const {
  const fs::path file = file_for(repo_path);
  if (auto e = read_entry(file); e && e->pid == pid) ::unlink(file.c_str());
}

std::vector<DaemonEntry> DaemonRegistry::list() const {
  std::vector<DaemonEntry> out;
  std::error_code ec;
  fs::directory_iterator it(dir_, ec), end;
  if (ec) return out;
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    const fs::path p = it->path();
    if (p.extension() != ".json") continue;
    auto e = read_entry(p);
    if (!e || !live(*e) || file_for(e->repo_path) != p) {
      ::unlink(p.c_str());
      continue;
    }
    out.push_back(std::move(*e));
  }
  std::sort(out.begin(), out.end(),
            [](const DaemonEntry& a, const DaemonEntry& b) { return a.repo_path < b.repo_path; });
  return out;
}

}  // namespace thrum::core
