#pragma once

#include <string>

namespace thrum::core {

/// Tells whoever started the daemon that it serves, and later that it stops:
///  - systemd (`Type=notify`): the sd_notify datagram protocol on $NOTIFY_SOCKET, by hand (no
///    libsystemd): `READY=1`, `STOPPING=1`, `STATUS=...`, `MAINPID=`. A path starting with `@`
///    is an abstract socket.
///  - `thrum daemon start`: one line `ready <pid> <ws_port>\n` on an inherited pipe, then the
///    pipe is closed; EOF without that line means the daemon failed (its log says why).
/// Either may be absent. Nothing here throws; a failure to notify is logged by the caller.
class Readiness {
 public:
  /// Reads and unsets $NOTIFY_SOCKET (children do not inherit it); `ready_fd` < 0 when none.
  /// Marks `ready_fd` close-on-exec.
  explicit Readiness(int ready_fd);
  ~Readiness();
  Readiness(const Readiness&) = delete;
  Readiness& operator=(const Readiness&) = delete;

  /// Both channels; returns "" or what failed.
  std::string ready(int pid, unsigned short ws_port, const std::string& status);
  /// systemd only (the pipe is closed once ready).
  std::string stopping();
  std::string reloading();
  std::string reloaded(const std::string& status);

  /// Sends one sd_notify datagram `text` to `socket` ("/path" or "@abstract"); "" or why not.
  static std::string notify(const std::string& socket, const std::string& text);

 private:
  std::string socket_;
  int ready_fd_ = -1;
};

}  // namespace thrum::core
