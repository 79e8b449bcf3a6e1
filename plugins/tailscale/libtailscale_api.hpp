#pragma once

#include <cstddef>
#include <string>

#include "thrum/sdk/types.hpp"

namespace thrum::transport::tailscale {

/// The C API of libtailscale (github.com/tailscale/libtailscale, tailscale.h), as function
/// pointer types. Handles are plain ints: a server (`tailscale`), a listener
/// (`tailscale_listener`, one end of a socketpair: readable means a connection is pending) and a
/// connection (`tailscale_conn`, a stream socket owned by the caller). Functions return 0 on
/// success and -1 (or an errno value such as EBADF / ERANGE) on failure; tailscale_errmsg gives
/// the server's last error text.
///
/// The fake used by the tests (tests/support/fake_libtailscale) checks its definitions against
/// these types at compile time.
namespace c_api {
using NewFn = int (*)();
using StartFn = int (*)(int sd);
using UpFn = int (*)(int sd);
using CloseFn = int (*)(int sd);
using SetStringFn = int (*)(int sd, const char* value);  // set_dir/hostname/authkey/control_url
using SetEphemeralFn = int (*)(int sd, int ephemeral);
using SetLogFdFn = int (*)(int sd, int fd);
using GetIpsFn = int (*)(int sd, char* buf, std::size_t buflen);
using DialFn = int (*)(int sd, const char* network, const char* addr, int* conn_out);
using ListenFn = int (*)(int sd, const char* network, const char* addr, int* listener_out);
using AcceptFn = int (*)(int listener, int* conn_out);
using GetRemoteAddrFn = int (*)(int listener, int conn, char* buf, std::size_t buflen);
using ErrmsgFn = int (*)(int sd, char* buf, std::size_t buflen);
}  // namespace c_api

/// The resolved entry points of one loaded libtailscale. Immutable once loaded; the library is
/// never unloaded (a Go c-shared library cannot be), so the pointers stay valid for the process's
/// lifetime and the struct may be shared freely between threads.
struct LibTailscale {
  std::string path;  ///< the file actually loaded
  c_api::NewFn new_server = nullptr;
  c_api::StartFn start = nullptr;
  c_api::UpFn up = nullptr;
  c_api::CloseFn close = nullptr;
  c_api::SetStringFn set_dir = nullptr;
  c_api::SetStringFn set_hostname = nullptr;
  c_api::SetStringFn set_authkey = nullptr;
  c_api::SetStringFn set_control_url = nullptr;
  c_api::SetEphemeralFn set_ephemeral = nullptr;
  c_api::SetLogFdFn set_logfd = nullptr;
  c_api::GetIpsFn getips = nullptr;
  c_api::DialFn dial = nullptr;
  c_api::ListenFn listen = nullptr;
  c_api::AcceptFn accept = nullptr;
  c_api::GetRemoteAddrFn getremoteaddr = nullptr;
  c_api::ErrmsgFn errmsg = nullptr;

  /// The server's last error text ("" when none), e.g. "invalid key: ...".
  std::string last_error(int sd) const;
};

/// Where embedded mode looks for libtailscale, in order: `env_path` ($THRUM_LIBTAILSCALE, may
/// be empty), `policy_path` (the policy's `library`, may be empty), then `libtailscale.so`
/// through the dynamic loader's default search. A candidate that does not exist is skipped; one
/// that exists but cannot be loaded, or lacks a symbol, stops the search with that error.
///
/// Returns the library or a Status (Errc::kUnavailable) whose message names every path searched
/// and docs/tailscale.md. Thread-safe; a library, once loaded, is cached and never unloaded.
sdk::Result<const LibTailscale*> load_libtailscale(const std::string& env_path,
                                                   const std::string& policy_path);

/// The symbols load_libtailscale() requires, in the order it checks them.
const char* const* required_symbols(std::size_t& count);

}  // namespace thrum::transport::tailscale
