#pragma once
// Whether the daemon that wrote another repo's `.thrum/var/ws.port` is still the one serving it.
//
// A daemon that died without running its exit path (kill -9, power loss) leaves ws.port behind,
// and anyone on this machine may bind the port it names. So a port file is trusted only while
// the daemon named in the same repo's pid file is alive and holds the repo's lock
// (`var/thrum.lock`, flock, listed in /proc/locks); otherwise the peer is down. (The link's
// challenge-response would refuse an impostor anyway; this keeps us from dialing one at all.)

#include <optional>
#include <string>

namespace thrum::transport::local {

/// nullopt when the daemon of `repo_path` is alive and holds its lock; otherwise why not, for
/// the user ("no daemon is running for /r (stale port file left by PID 123)").
std::optional<std::string> why_not_serving(const std::string& repo_path);

}  // namespace thrum::transport::local
