#pragma once
// `who-has FILE` (SPEC §6.5): local agents whose worktree has uncommitted changes to FILE
// (`git status --porcelain`, run on a worker thread, never on the loop).

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace thrum::core {
class Messaging;
}

namespace thrum::core::peers {

class Context;

class WhoHas {
 public:
  explicit WhoHas(Context& ctx);
  ~WhoHas();
  WhoHas(const WhoHas&) = delete;
  WhoHas& operator=(const WhoHas&) = delete;
  /// `done(agent names)` on the loop.
  void local(const std::string& file, std::function<void(std::vector<std::string>)> done);
  void shutdown();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace thrum::core::peers
