#include "daemon_liveness.hpp"

#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace thrum::transport::local {

namespace {

std::optional<std::string> slurp(const std::string& path, std::size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string out(limit, '\0');
  in.read(out.data(), static_cast<std::streamsize>(limit));
  out.resize(static_cast<std::size_t>(in.gcount()));
  return out;
}

/// The pid in `<var>/thrum.pid` ({"pid": N, ...}, or a bare integer from older builds), or 0.
long pid_from_file(const std::string& var) {
  auto text = slurp(var + "/thrum.pid", 4096);
  if (!text) return 0;
  auto doc = nlohmann::json::parse(*text, nullptr, false);
  if (doc.is_object()) {
    auto it = doc.find("pid");
    if (it != doc.end() && it->is_number_integer()) return it->get<long>();
    return 0;
  }
  return doc.is_number_integer() ? doc.get<long>() : 0;
}

/// 1: `pid` holds a FLOCK on inode `ino`; 0: it does not; -1: /proc/locks cannot tell.
int holds_flock(long pid, ino_t ino) {
  std::ifstream in("/proc/locks");
  if (!in) return -1;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, kind, mode, access, p, where;
    if (!(ls >> id >> kind)) continue;
    if (kind == "->") continue;  // a waiter, not a holder
    if (!(ls >> mode >> access >> p >> where) || kind != "FLOCK") continue;
    auto colon = where.rfind(':');
    if (colon == std::string::npos) continue;
    if (p == std::to_string(pid) && where.substr(colon + 1) == std::to_string(ino)) return 1;
  }
  return 0;
}

}  // namespace

std::optional<std::string> why_not_serving(const std::string& repo_path) {
  const std::string var = repo_path + "/.thrum/var";
  const long pid = pid_from_file(var);
  if (pid <= 0)
    return "no daemon is running for " + repo_path + " (its pid file is missing or unreadable)";
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM)
    return "no daemon is running for " + repo_path + " (stale port file: PID " +
           std::to_string(pid) + " has exited)";
  struct stat lock {};
  if (::stat((var + "/thrum.lock").c_str(), &lock) != 0)
    return "no daemon is running for " + repo_path + " (no lock file)";
  if (holds_flock(pid, lock.st_ino) == 0)
    return "no daemon is running for " + repo_path + " (stale port file: PID " +
           std::to_string(pid) + " does not hold the repo's lock)";
  return std::nullopt;
}

}  // namespace thrum::transport::local
