// The operator policy YAML. Invariants: no crash; the only exception is PolicyError, whose
// message starts with the file name; a parsed policy answers enabled()/options() for each id.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "thrum/core/policy.hpp"

using thrum::core::Policy;
using thrum::core::PolicyError;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    Policy p = Policy::parse(text, "/etc/thrum/transports.yaml");
    for (const auto& [id, t] : p.transports()) {
      (void)p.enabled(id);
      (void)p.options(id).dump();  // plugin_host passes this text to configure()
    }
  } catch (const PolicyError& e) {
    if (std::string(e.what()).rfind("/etc/thrum/transports.yaml", 0) != 0) std::abort();
  } catch (...) {
    std::abort();  // any other exception would escape `plugins list` or daemon start raw
  }
  return 0;
}
