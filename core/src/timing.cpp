#include "thrum/core/timing.hpp"

#include <algorithm>
#include <cstdlib>

namespace thrum::core::timing {

double time_scale() {
  static const double scale = [] {
    const char* v = std::getenv("THRUM_TIME_SCALE");
    if (!v || !*v) return 1.0;
    double d = std::strtod(v, nullptr);
    return (d > 0 && d <= 1) ? d : 1.0;
  }();
  return scale;
}

const Constants& constants() {
  static const Constants c = [] {
    Constants k;
    const double s = time_scale();
    auto sc = [s](ms& v) { v = ms(std::max<long long>(1, static_cast<long long>(v.count() * s))); };
    sc(k.pairing_expiry);
    sc(k.ping_interval);
    sc(k.dead_after);
    sc(k.backoff_initial);
    sc(k.backoff_cap);
    sc(k.healthy_reset);
    sc(k.short_lived);
    sc(k.quarantine_probe);
    sc(k.boot_reconcile_delay);
    for (auto& w : k.reconcile_waits) sc(w);
    sc(k.registry_flush);
    return k;
  }();
  return c;
}

ms next_delay(const Backoff& b, const Constants& c, std::mt19937_64& rng) {
  if (quarantined(b, c)) return c.quarantine_probe;
  const int exp = std::clamp(b.failures - 1, 0, 30);
  const long long ceiling =
      std::min<long long>(c.backoff_cap.count(), c.backoff_initial.count() << std::min(exp, 20));
  std::uniform_int_distribution<long long> dist(0, std::max<long long>(ceiling, 1));
  return ms(dist(rng));
}

bool quarantined(const Backoff& b, const Constants& c) {
  return b.failures >= c.quarantine_after;
}

void on_disconnect(Backoff& b, std::chrono::steady_clock::time_point now, const Constants& c) {
  const bool was_up = b.healthy_since != std::chrono::steady_clock::time_point{};
  if (!was_up || now - b.healthy_since < c.short_lived)
    b.failures++;
  else if (now - b.healthy_since >= c.healthy_reset)
    b.failures = 0;
  b.healthy_since = {};
}

}  // namespace thrum::core::timing
