// Modes without following links: ensure_dir never chmods a symlink's target; tighten_mode
// and move-aside work on the file itself.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "support/helpers.hpp"
#include "thrum/common/fs_util.hpp"

namespace thrum::core {
namespace {

namespace fs = std::filesystem;
using test::file_mode;

class FileModesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "thrum-modes-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_F(FileModesTest, SymlinkedDirToASharedTargetIsRefusedAndTheTargetUntouched) {
  const fs::path shared = dir_ / "shared";
  fs::create_directory(shared);
  ::chmod(shared.c_str(), 0755);
  const fs::path var = dir_ / "var";
  fs::create_directory_symlink(shared, var);
  try {
    ensure_dir(var, 0700);
    FAIL() << "a link to a 0755 directory was accepted";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("is a symlink to " + shared.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("chmod 700"), std::string::npos) << msg;
  }
  EXPECT_EQ(file_mode(shared), 0755) << "the target's mode must not change";
}

TEST_F(FileModesTest, SymlinkedDirToAPrivateTargetIsUsedAsIs) {
  const fs::path priv = dir_ / "private";
  fs::create_directory(priv);
  ::chmod(priv.c_str(), 0700);
  const fs::path var = dir_ / "var";
  fs::create_directory_symlink(priv, var);
  EXPECT_NO_THROW(ensure_dir(var, 0700));
  EXPECT_EQ(file_mode(priv), 0700);
}

TEST_F(FileModesTest, PlainDirGetsItsMode) {
  const fs::path d = dir_ / "var";
  fs::create_directory(d);
  ::chmod(d.c_str(), 0755);
  ensure_dir(d, 0700);
  EXPECT_EQ(file_mode(d), 0700);
}

TEST_F(FileModesTest, TightenModeChangesFilesButNotLinkTargets) {
  const fs::path f = dir_ / "thrum.db";
  atomic_write_file(f, "x", 0644);
  EXPECT_TRUE(tighten_mode(f, 0600));
  EXPECT_EQ(file_mode(f), 0600);
  EXPECT_FALSE(tighten_mode(f, 0600)) << "already right";

  const fs::path target = dir_ / "elsewhere";
  atomic_write_file(target, "y", 0644);
  const fs::path link = dir_ / "daemon.log";
  fs::create_symlink(target, link);
  EXPECT_FALSE(tighten_mode(link, 0600));
  EXPECT_EQ(file_mode(target), 0644) << "a link's target is never chmodded";
  EXPECT_FALSE(tighten_mode(dir_ / "absent", 0600));
}

TEST_F(FileModesTest, MovedAsideCopyIsPrivate) {
  const fs::path f = dir_ / "config.json";
  atomic_write_file(f, "{", 0644);
  const fs::path moved = move_aside_corrupt(f);
  EXPECT_EQ(file_mode(moved), 0600);
}

}  // namespace
}  // namespace thrum::core
