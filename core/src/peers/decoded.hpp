#pragma once
// A decoded value or the reason it was refused: what every decoder of untrusted input returns.

#include <string>
#include <utility>
#include <variant>

namespace thrum::core::peers {

/// Why a decoder refused its input. `message` names the field and the rule
/// ("items[3].to[0]: invalid agent name"); it never quotes the input.
struct Refusal {
  std::string message;
};

template <class T>
class Decoded {
 public:
  Decoded(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Decoded(Refusal r) : v_(std::move(r)) {}    // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const std::string& error() const { return std::get<1>(v_).message; }

 private:
  std::variant<T, Refusal> v_;
};

}  // namespace thrum::core::peers
