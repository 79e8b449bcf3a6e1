// The policy lookup the daemon and the CLI share (policy_lookup.hpp) and the one
// warning line `daemon start` prints when the policy changed since the previous daemon.
#include "thrum/common/policy_record.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace thrum::core {
namespace {

namespace fs = std::filesystem;

/// THRUM_POLICY for one test, restored afterwards.
class PolicyEnv {
 public:
  explicit PolicyEnv(const char* value) {
    if (const char* old = std::getenv("THRUM_POLICY")) old_ = old;
    if (value)
      ::setenv("THRUM_POLICY", value, 1);
    else
      ::unsetenv("THRUM_POLICY");
  }
  ~PolicyEnv() {
    if (old_)
      ::setenv("THRUM_POLICY", old_->c_str(), 1);
    else
      ::unsetenv("THRUM_POLICY");
  }

 private:
  std::optional<std::string> old_;
};

TEST(PolicyRecord, TheStartUsesEnvMadeAbsoluteThenEtcThenNone) {
  const fs::path etc = fs::temp_directory_path() / ("thrum-etc-" + std::to_string(::getpid()));
  {
    PolicyEnv env(nullptr);
    EXPECT_EQ(policy_file_for_start(etc), std::nullopt);
    std::ofstream(etc) << "transports: {}\n";
    EXPECT_EQ(policy_file_for_start(etc), etc);
  }
  {
    PolicyEnv env("");
    EXPECT_EQ(policy_file_for_start(etc), etc) << "an empty THRUM_POLICY is no THRUM_POLICY";
  }
  {
    PolicyEnv env("conf/../p.yaml");
    EXPECT_EQ(policy_file_for_start(etc), fs::current_path() / "p.yaml");
  }
  fs::remove(etc);
}

TEST(PolicyRecord, NoWarningWithoutARecordOrForTheSamePolicy) {
  EXPECT_EQ(policy_change_warning(std::nullopt, "/p/a.yaml"), "");
  EXPECT_EQ(policy_change_warning("/p/a.yaml", "/p/a.yaml"), "");
  EXPECT_EQ(policy_change_warning("", ""), "");
}

TEST(PolicyRecord, TheWarningNamesBothAndHowToKeepThePreviousOne) {
  PolicyEnv env(nullptr);
  EXPECT_EQ(policy_change_warning("/p/a.yaml", ""),
            "policy: this start uses no policy file (every transport enabled); the previous "
            "daemon used /p/a.yaml (set THRUM_POLICY=/p/a.yaml to keep it)");
  EXPECT_EQ(policy_change_warning("", "/etc/thrum/transports.yaml"),
            "policy: this start uses /etc/thrum/transports.yaml; the previous daemon used no "
            "policy file (every transport enabled) (/etc/thrum/transports.yaml did not exist "
            "then)");
  PolicyEnv set("/p/b.yaml");
  EXPECT_EQ(policy_change_warning("", "/p/b.yaml"),
            "policy: this start uses /p/b.yaml; the previous daemon used no policy file (every "
            "transport enabled) (unset THRUM_POLICY to keep it)");
}

}  // namespace
}  // namespace thrum::core
