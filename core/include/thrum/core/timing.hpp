#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace thrum::core::timing {

using ms = std::chrono::milliseconds;

/// Every peer timing number of SPEC §6–§7, in one place. scaled() applies THRUM_TIME_SCALE
/// (a factor in (0, 1], for tests only: e.g. 0.05 makes a 2 s reconcile wait 100 ms); the
/// defaults are the documented numbers.
struct Constants {
  ms pairing_expiry{5 * 60 * 1000};
  int pairing_attempts = 3;
  ms ping_interval{5000};
  ms dead_after{15000};
  ms backoff_initial{250};
  ms backoff_cap{30000};
  ms healthy_reset{60000};
  /// A link that dies sooner than this after coming up counts as a failed attempt (a peer that
  /// accepts and then drops us must back off like one that refuses).
  ms short_lived{10000};
  int quarantine_after = 10;
  ms quarantine_probe{60000};
  ms dial_timeout{5000};
  ms boot_reconcile_delay{2000};
  int reconcile_parallel = 4;
  int reconcile_after_failures = 3;
  ms reconcile_waits[3] = {ms(2000), ms(8000), ms(30000)};
  ms port_file_poll{500};
  ms registry_flush{5000};
};

/// The constants in force for this process (THRUM_TIME_SCALE read once).
const Constants& constants();
double time_scale();

/// Reconnect backoff state for one dialer peer: a pure function of (state, now, rng).
struct Backoff {
  int failures = 0;                                       ///< consecutive failed attempts
  std::chrono::steady_clock::time_point healthy_since{};  ///< when the current link came up
};

/// Delay before the next attempt after `b.failures` consecutive failures: full jitter over
/// min(cap, initial * 2^(failures-1)); once quarantined, one probe per quarantine_probe.
ms next_delay(const Backoff& b, const Constants& c, std::mt19937_64& rng);
/// True when the peer has failed often enough to be quarantined.
bool quarantined(const Backoff& b, const Constants& c);
/// Called when a link goes down: a link that stayed up for healthy_reset starts over; one that
/// lived less than short_lived counts as one more failure.
void on_disconnect(Backoff& b, std::chrono::steady_clock::time_point now, const Constants& c);

}  // namespace thrum::core::timing
