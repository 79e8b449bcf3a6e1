#pragma once
// What identifies one connection the same way at both of its ends, for binding a proof to it
// (link_auth.hpp, pairing.hpp):
//  - TLS (transports with Capabilities::needs_tls): both certificate fingerprints as seen in
//    the handshake, initiator's first;
//  - loopback-only transports over TCP (local): the TCP 4-tuple, "initiator ip:port >
//    responder ip:port" — a relay makes two connections, whose 4-tuples differ;
//  - anything else (a Unix-domain or userspace-stack socket, e.g. tsnet's socketpairs): nothing
//    the two ends could agree on; the transport's own channel (WireGuard, file permissions)
//    carries the trust.

#include <string>
#include <string_view>

namespace thrum::core::peers {

/// "tcp:<initiator>><responder>" for an AF_INET/AF_INET6 stream socket `fd`, seen from the
/// initiator (its local end is the initiator) or the responder; "" for other sockets.
std::string endpoint_binding(int fd, bool initiator);

/// The binding of one connection: `endpoints` (from endpoint_binding, or "" when the transport
/// does not bind endpoints) and the TLS fingerprints ("" without TLS).
std::string channel_binding(std::string_view endpoints, std::string_view initiator_cert,
                            std::string_view responder_cert);

}  // namespace thrum::core::peers
