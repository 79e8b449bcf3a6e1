#pragma once
// Who a message goes to (SPEC §5, §6.4): `@name` (a local agent or a proxy `@prefix:name`),
// `@everyone`, or — for a reply without `to` — the parent's author (or, when the author replies
// to themselves, the parent's recipients). Nothing is stored unless every recipient resolves;
// an unknown one is an error with a hint (the peer to configure, or `team --all`).

#include <optional>
#include <string>
#include <vector>

#include "thrum/core/messaging_types.hpp"

namespace thrum::core {
class Router;
namespace sql {
class Db;
}
}  // namespace thrum::core

namespace thrum::core::messaging {

class AgentDirectory;

struct Recipients {
  std::vector<std::string> locals;    ///< local agents: delivered at once, sorted, unique
  std::vector<const Agent*> proxies;  ///< agents on peers: queued for their links, unique
  std::vector<std::string> audience;  ///< "agent:<id>" entries, in the order given
  bool broadcast = false;             ///< @everyone
};

/// Resolves `to` for `caller` (throws rpc::Failure naming the unknown recipient and what to do).
/// `router` (may be null) supplies the peer that owns a prefix, for the hint.
Recipients resolve_recipients(const AgentDirectory& agents, const Agent& caller,
                              const std::vector<std::string>& to,
                              const std::optional<StoredMessage>& parent, sql::Db& reader,
                              const Router* router);

}  // namespace thrum::core::messaging
