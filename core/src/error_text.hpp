#pragma once
// What an exception_ptr from a store job or a completion says, for a log line or an error.

#include <exception>
#include <string>

namespace thrum::core {

inline std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown error";
  }
}

}  // namespace thrum::core
