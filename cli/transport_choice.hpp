#pragma once
// `peer add|join --type <id>`: which transports exist is the daemon's answer (RPC
// `peer.transports`, built from the plugins it loaded), never a list compiled into the CLI. The
// help block, the type check, the required flags and the credential all come from that answer
// (Capabilities and the ABI 1.1 TransportProfile of each plugin).

#include <chrono>
#include <string>
#include <vector>

#include "cli.hpp"

namespace thrum::cli {

class RpcClient;

/// A transport's credential as its profile declares it (sdk::CredentialSpec).
struct CredentialInfo {
  std::string name;    ///< e.g. "auth key"; empty: the transport needs none
  std::string env;     ///< e.g. "THRUM_TS_AUTHKEY"; may be empty
  std::string prompt;  ///< e.g. "Tailscale auth key (tskey-...): "
};

/// One entry of `peer.transports`, decoded.
struct TransportInfo {
  std::string id;
  bool available = false;
  std::string why;   ///< why not available ("disabled by policy (<file>)", "refused: ...")
  std::string help;  ///< profile().help: first line a summary, then when to use it
  bool needs_address = false;
  bool needs_repo_path = false;
  CredentialInfo credential;
};

/// What the daemon (or, when none runs, the plugin scan of `thrum-daemon plugins-list`) knows.
struct TransportChoices {
  std::vector<TransportInfo> transports;
  /// True when no daemon answered and the list comes from scanning the plugin directories.
  bool scanned = false;
};

/// Decodes a `peer.transports` array. Entries that are not objects or lack a string id are
/// skipped; wrong-typed fields read as their defaults. Never throws on bad input.
TransportChoices decode_transports(const json& list);

/// Asks the daemon of the repo in `ctx`; when there is no repo, no daemon, or an old daemon
/// without `peer.transports`, runs `thrum-daemon plugins-list` (same policy and directories).
TransportChoices load_transports(const Context& ctx);

/// The block `peer add|join` print without --type: one entry per available transport (its
/// help, indented), then `repair` for join, then the ids that are not available and why.
std::string type_help(const TransportChoices& choices, bool join);

/// Checks `--type`. Empty: UsageError with the help block. `repair`: fine on join (returns
/// nullptr), UsageError on add. An id the daemon does not know: UsageError naming the
/// available ids, then the help block. A known id that is not available: Error
/// `transport "X" is not available: <reason>`. Otherwise the transport's entry.
const TransportInfo* choose_transport(const std::string& type, bool join,
                                      const TransportChoices& choices);

/// Puts the credential into `params["auth_key"]`: `flag` (--auth-key), else the environment
/// variable the transport's CredentialSpec names, from this shell. Nothing for transports that
/// declare no credential.
void add_credential(json& params, const TransportInfo& t, const std::string& flag);

/// Calls `method`; when the daemon answers that the transport's credential is required (an
/// error starting with "<credential name> is required"), none was given, and stdin is a
/// terminal, asks for it without echo (the profile's prompt) and calls again.
json call_asking_for_credential(RpcClient& client, const std::string& method, json params,
                                std::chrono::seconds timeout, const TransportInfo& t);

}  // namespace thrum::cli
