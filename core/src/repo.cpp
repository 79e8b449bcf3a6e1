#include "thrum/core/repo.hpp"

#include <cstdlib>
#include <system_error>

#include "thrum/core/fs_util.hpp"

namespace thrum::core {
namespace fs = std::filesystem;

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
  p.pid = p.var / "thrum.pid";
  p.lock = p.var / "thrum.lock";
  p.ws_port = p.var / "ws.port";
  p.ws_port_last = p.var / "ws.port.last";
  p.db = p.var / "thrum.db";
  p.peers = p.var / "peers.json";
  p.log = p.var / "daemon.log";
  p.tls = p.var / "tls";
  p.tsnet = p.var / "tsnet";
  return p;
}

std::optional<fs::path> find_repo_root(const std::optional<fs::path>& explicit_repo,
                                       const fs::path& start) {
  if (explicit_repo) return fs::absolute(*explicit_repo);
  std::error_code ec;
  for (fs::path dir = fs::absolute(start); !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_directory(dir / ".thrum", ec)) return dir;
    if (dir == dir.root_path()) break;
  }
  if (const char* home = std::getenv("THRUM_HOME"); home && *home) return fs::path(home);
  return std::nullopt;
}

std::optional<unsigned short> read_port_file(const fs::path& path) {
  std::optional<std::string> text;
  try {
    text = read_file(path);
  } catch (const std::system_error&) {
    return std::nullopt;
  }
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

}  // namespace thrum::core
