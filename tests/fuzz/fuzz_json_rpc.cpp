// One line from the Unix socket or a /ws text frame through the JSON-RPC dispatcher, with
// handlers that read params the way the real ones do (rpc::Params) and one that throws.
// Invariants: no crash, no exception out of handle(), every reply is JSON that parses back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "thrum/common/bounded_json.hpp"
#include "thrum/core/json_rpc.hpp"

using thrum::core::rpc::CallContext;
using thrum::core::rpc::Dispatcher;
using thrum::core::rpc::Error;
using thrum::core::rpc::json;
using thrum::core::rpc::Params;
using thrum::core::rpc::Respond;

namespace {

Dispatcher& dispatcher() {
  static Dispatcher* d = [] {
    auto* x = new Dispatcher;
    x->add("echo", [](const json& p, const CallContext&, Respond r) { r(p); });
    x->add("typed", [](const json& p, const CallContext&, Respond r) {
      Params ps(p);
      json out = json::object();
      out["a"] = ps.str("a");
      if (auto b = ps.opt_str("b")) out["b"] = *b;
      if (auto n = ps.opt_int("n")) out["n"] = *n;
      out["f"] = ps.flag("f");
      out["to"] = ps.str_list("to");
      r(out);
    });
    x->add("throws", [](const json&, const CallContext&, Respond) {
      throw std::runtime_error("handler bug");
    });
    x->add("fails", [](const json&, const CallContext&, Respond r) {
      r(Error{-32000, "refused", json::object()});
    });
    x->add(
        "unix_only", [](const json&, const CallContext&, Respond r) { r(json(true)); },
        Dispatcher::kUnix);
    return x;
  }();
  return *d;
}

void check_reply(const std::string& reply) {
  if (!thrum::core::parse_bounded(reply)) std::abort();  // every reply must be valid JSON
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  CallContext unix_ctx;
  CallContext ws_ctx;
  ws_ctx.channel = CallContext::Channel::kWebSocket;
  try {
    dispatcher().handle(text, unix_ctx, check_reply);
    dispatcher().handle(text, ws_ctx, check_reply);
  } catch (...) {
    std::abort();  // an exception out of the dispatcher would stop the event loop
  }
  return 0;
}
