#pragma once
/// @file
/// Counts of things that went wrong inside the daemon without stopping it: an exception that
/// escaped a handler, a peer link closed because handling a frame threw, an accept that failed.
/// `health` reports them as `incidents`, so an operator (or a test) can see that input hurt
/// something even though the daemon kept serving. Thread-safe; never reset while running.

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace thrum::core {

enum class Incident : unsigned {
  kHandlerException,    ///< an RPC handler or its respond callback threw something unexpected
  kPeerLinkException,   ///< handling a peer frame threw; that link was closed
  kAcceptError,         ///< accept(2) failed on a listener (EMFILE, ENFILE, ...)
  kEventLoopException,  ///< an exception reached the event loop itself
  kConnectionRefused,   ///< a listener was at its connection cap and hung up on a newcomer
  kCount_
};

/// The `health` key of each incident kind, e.g. "handler_exceptions".
std::string_view incident_name(Incident kind);

class Incidents {
 public:
  void bump(Incident kind) { counts_[index(kind)].fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t count(Incident kind) const {
    return counts_[index(kind)].load(std::memory_order_relaxed);
  }
  /// The process-wide counters (what `health` shows).
  static Incidents& global();

 private:
  static constexpr std::size_t index(Incident k) { return static_cast<std::size_t>(k); }
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Incident::kCount_)> counts_{};
};

/// Shorthand for Incidents::global().bump(kind).
inline void count_incident(Incident kind) {
  Incidents::global().bump(kind);
}

}  // namespace thrum::core
