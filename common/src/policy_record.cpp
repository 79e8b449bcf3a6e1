#include "thrum/common/policy_record.hpp"

#include <cstdlib>
#include <system_error>

#include "thrum/common/fs_util.hpp"

namespace thrum::core {
namespace fs = std::filesystem;

namespace {

std::string shown(const std::string& source) {
  return source.empty() ? "no policy file (every transport enabled)" : source;
}

}  // namespace

std::optional<std::string> recorded_policy_source(const RepoPaths& paths) {
  auto text = read_file_or_nothing(paths.policy_source);
  if (!text) return std::nullopt;
  if (auto nl = text->find('\n'); nl != std::string::npos) text->resize(nl);
  return text;
}

void record_policy_source(const RepoPaths& paths, const std::string& source) {
  atomic_write_file(paths.policy_source, source + "\n", 0600);
}

std::string policy_change_warning(const std::optional<std::string>& recorded,
                                  const std::string& upcoming) {
  if (!recorded || *recorded == upcoming) return "";
  // The same file by another name (a symlink, a path through one) is the same policy.
  std::error_code ec;
  if (!recorded->empty() && !upcoming.empty() && fs::equivalent(*recorded, upcoming, ec)) return "";
  std::string keep;
  if (!recorded->empty()) {
    keep = "set THRUM_POLICY=" + *recorded + " to keep it";
  } else if (const char* env = std::getenv("THRUM_POLICY"); env != nullptr && *env != '\0') {
    keep = "unset THRUM_POLICY to keep it";
  } else {
    keep = upcoming + " did not exist then";
  }
  return "policy: this start uses " + shown(upcoming) + "; the previous daemon used " +
         shown(*recorded) + " (" + keep + ")";
}

}  // namespace thrum::core
