#pragma once
// A Link for unit tests: records every call and lets the test answer it.

#include <string>
#include <utility>
#include <vector>

#include "peers/link.hpp"

namespace thrum::test {

class FakeLink final : public core::peers::Link {
 public:
  struct Call {
    std::string method;
    Json params;
    Reply reply;
  };

  void set_handlers(RequestHandler on_request, CloseHandler on_close) override {
    on_request_ = std::move(on_request);
    on_close_ = std::move(on_close);
  }
  void call(const std::string& method, const Json& params, Reply reply) override {
    calls.push_back({method, params, std::move(reply)});
  }
  void call_text(const std::string& method, const std::string& params, Reply reply) override {
    calls.push_back({method, Json::parse(params), std::move(reply)});
  }
  void notify(const std::string& method, const Json& params) override {
    notes.emplace_back(method, params);
  }
  void close(const std::string& reason) override {
    if (!open_) return;
    open_ = false;
    closed_reason = reason;
    auto pending = std::move(calls);
    calls.clear();
    for (auto& c : pending)
      if (c.reply) c.reply(core::rpc::Error{kClosedCode, reason, nullptr});
    if (on_close_) on_close_(reason);
  }
  bool is_open() const override { return open_; }
  void set_max_frame_bytes(std::size_t n) override { max_frame = n; }

  /// Answers the oldest unanswered call with `result` and removes it.
  void answer_first(Json result) {
    auto c = std::move(calls.front());
    calls.erase(calls.begin());
    c.reply(core::rpc::Outcome(std::move(result)));
  }
  void fail_first(std::string message) {
    auto c = std::move(calls.front());
    calls.erase(calls.begin());
    c.reply(core::rpc::Error{core::rpc::kHandlerError, std::move(message), nullptr});
  }

  std::vector<Call> calls;
  std::vector<std::pair<std::string, Json>> notes;
  std::string closed_reason;
  std::size_t max_frame = 0;

 private:
  bool open_ = true;
  RequestHandler on_request_;
  CloseHandler on_close_;
};

}  // namespace thrum::test
