#include "peers/who_has.hpp"

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstdio>
#include <map>

#include "peers/context.hpp"
#include "thrum/core/messaging.hpp"

namespace thrum::core::peers {

namespace {

/// `git status --porcelain -- file` in `worktree` is not empty.
bool has_changes(const std::string& worktree, const std::string& file) {
  auto quote = [](const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  std::string cmd =
      "git -C " + quote(worktree) + " status --porcelain -- " + quote(file) + " 2>/dev/null";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return false;
  std::array<char, 256> buf{};
  bool any = std::fgets(buf.data(), buf.size(), f) != nullptr;
  ::pclose(f);
  return any;
}

}  // namespace

struct WhoHas::Impl : std::enable_shared_from_this<WhoHas::Impl> {
  explicit Impl(Context& c) : ctx(c), pool(1) {}
  Context& ctx;
  boost::asio::thread_pool pool;
};

WhoHas::WhoHas(Context& ctx) : impl_(std::make_shared<Impl>(ctx)) {}

WhoHas::~WhoHas() {
  shutdown();
}

void WhoHas::shutdown() {
  impl_->pool.stop();
  impl_->pool.join();
}

void WhoHas::local(const std::string& file, std::function<void(std::vector<std::string>)> done) {
  std::map<std::string, std::vector<std::string>> by_worktree;
  for (const auto& [id, a] : impl_->ctx.messaging.agents())
    if (!a.is_proxy() && !a.worktree.empty()) by_worktree[a.worktree].push_back(id);
  std::weak_ptr<Impl> weak = impl_;
  boost::asio::post(impl_->pool, [weak, by_worktree, file, done] {
    std::vector<std::string> agents;
    for (const auto& [wt, ids] : by_worktree)
      if (!file.empty() && has_changes(wt, file))
        for (const auto& id : ids) agents.push_back(id);
    if (auto self = weak.lock())
      self->ctx.loop.post([weak, agents, done] {
        if (weak.lock()) done(agents);
      });
  });
}

}  // namespace thrum::core::peers
