#pragma once
// What a peer-layer unit needs around it in a unit test: a repo in a temp dir, a real store and
// messaging on a manual loop, and the shared peers::Context. No sockets; the io_context never runs.

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "manual_loop.hpp"
#include "peers/context.hpp"
#include "thrum/common/repo.hpp"
#include "thrum/core/messaging.hpp"
#include "thrum/core/store.hpp"

namespace thrum::test {

class PeerTestbed {
 public:
  explicit PeerTestbed(core::PeerManager::TransportLookup lookup = nullptr) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "thrum-peers-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root = tmpl;
    paths = core::RepoPaths::for_root(root);
    std::filesystem::create_directories(paths.var);
    store = std::make_unique<core::Store>(paths.db, loop);
    messaging = std::make_unique<core::Messaging>(
        core::Messaging::Options{paths, "d_self", 1048576}, *store, loop);
    core::PeerManager::Options o;
    o.paths = paths;
    o.daemon_id = "d_self";
    o.repo_name = "web";
    o.hostname = "host-a";
    ctx =
        std::make_unique<core::peers::Context>(o, ioc, loop, *store, *messaging, std::move(lookup));
  }
  ~PeerTestbed() {
    ctx.reset();
    messaging.reset();
    store->close();
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }

  ManualLoop loop;
  boost::asio::io_context ioc;
  std::filesystem::path root;
  core::RepoPaths paths;
  std::unique_ptr<core::Store> store;
  std::unique_ptr<core::Messaging> messaging;
  std::unique_ptr<core::peers::Context> ctx;
};

}  // namespace thrum::test
