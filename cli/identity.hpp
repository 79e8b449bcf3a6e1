#pragma once

#include <string>

#include "thrum/common/repo.hpp"

namespace thrum::cli {

/// Which agent this CLI acts as (SPEC §2): $THRUM_NAME, else the only identity file in
/// `.thrum/identities/`, else an Error that lists the names (or says how to register one).
std::string current_agent(const core::RepoPaths& paths);

/// The git top-level of the current directory, or the current directory outside git.
std::string current_worktree();

}  // namespace thrum::cli
