#pragma once

// A raw HTTP/1.1 exchange over TCP to 127.0.0.1, for tests that must send what no real client
// would (a WebSocket upgrade to /peer with no token, a wrong token) and look at the answer as is.

#include <chrono>
#include <map>
#include <string>

namespace thrum::test {

struct RawHttpResponse {
  int status = 0;   ///< HTTP status code; 0 when no status line came back
  std::string raw;  ///< everything the server sent before closing (or the timeout)
};

/// Sends `request` (already formatted, including the blank line) to 127.0.0.1:`port` and reads
/// until the server closes the connection or `timeout` passes.
RawHttpResponse raw_http_exchange(unsigned short port, const std::string& request,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5));

/// A WebSocket upgrade request for `target` with `extra_headers` (e.g. Authorization).
std::string websocket_upgrade_request(unsigned short port, const std::string& target,
                                      const std::map<std::string, std::string>& extra_headers = {});

}  // namespace thrum::test
