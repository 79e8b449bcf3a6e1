// fs_util: the atomic replace that every important file goes through, and the backup-once copy.
#include "thrum/common/fs_util.hpp"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "support/helpers.hpp"

namespace thrum::core {
namespace {

namespace fs = std::filesystem;
using test::file_mode;
using test::slurp;

class FsUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "thrum-fs-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ::chmod(dir_.c_str(), 0700);
    for (const auto& e : fs::recursive_directory_iterator(dir_))
      if (e.is_directory()) ::chmod(e.path().c_str(), 0700);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::vector<std::string> names_in(const fs::path& d) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(d)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  fs::path dir_;
};

TEST_F(FsUtilTest, AtomicWriteReplacesContentWithModeAndNoTempFileLeft) {
  const fs::path f = dir_ / "config.json";
  atomic_write_file(f, "first", 0600);
  EXPECT_EQ(slurp(f), "first");
  EXPECT_EQ(file_mode(f), 0600);
  atomic_write_file(f, "second, longer content", 0644);
  EXPECT_EQ(slurp(f), "second, longer content");
  EXPECT_EQ(file_mode(f), 0644);
  atomic_write_file(f, "", 0600);
  EXPECT_EQ(slurp(f), "");
  EXPECT_EQ(names_in(dir_), std::vector<std::string>{"config.json"});
}

TEST_F(FsUtilTest, RuntimeFilesAreReplacedAtomicallyToo) {
  // Durability::kRuntime skips the fsyncs, not the temp file and rename: a reader racing the
  // write sees the old port or the new one.
  const fs::path f = dir_ / "ws.port";
  atomic_write_file(f, "41000\n", 0600, Durability::kRuntime);
  EXPECT_EQ(slurp(f), "41000\n");
  EXPECT_EQ(file_mode(f), 0600);
  atomic_write_file(f, "41001\n", 0640, Durability::kRuntime);
  EXPECT_EQ(slurp(f), "41001\n");
  EXPECT_EQ(file_mode(f), 0640);
  EXPECT_EQ(names_in(dir_), std::vector<std::string>{"ws.port"});
  fs::create_directories(dir_ / "occupied" / "inside");  // rename onto it fails
  EXPECT_THROW(atomic_write_file(dir_ / "occupied", "x", 0600, Durability::kRuntime),
               std::system_error);
  EXPECT_EQ(names_in(dir_), (std::vector<std::string>{"occupied", "ws.port"}))
      << "no temp file left behind";
}

TEST_F(FsUtilTest, AtomicWriteThatFailsLeavesOldContentAndNoTempFile) {
  // rename() onto a non-empty directory fails after the temp file was written: the cleanup path.
  const fs::path target = dir_ / "occupied";
  fs::create_directories(target / "inside");
  EXPECT_THROW(atomic_write_file(target, "data", 0600), std::system_error);
  EXPECT_TRUE(fs::is_directory(target / "inside"));
  EXPECT_EQ(names_in(dir_), std::vector<std::string>{"occupied"}) << "no temp file may be left";
}

TEST_F(FsUtilTest, AtomicWriteIntoUnwritableDirectoryKeepsOldContent) {
  const fs::path sub = dir_ / "ro";
  fs::create_directories(sub);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);  // reachable, so only the write bit is missing
  const fs::path f = sub / "peers.json";
  atomic_write_file(f, "old content", 0600);
  ASSERT_EQ(::chmod(f.c_str(), 0644), 0);
  ASSERT_EQ(::chmod(sub.c_str(), 0555), 0);

  // root ignores directory permissions, so the attempt runs as an unprivileged user then.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) _exit(3);
    try {
      atomic_write_file(f, "new content", 0600);
      _exit(1);  // should not have succeeded
    } catch (const std::system_error& e) {
      // The message names the file the user asked for.
      _exit(std::string(e.what()).find("peers.json") != std::string::npos ? 0 : 2);
    } catch (...) {
      _exit(4);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "1: write succeeded, 2: error did not name the file, 3: could not drop privileges";
  EXPECT_EQ(slurp(f), "old content");
  EXPECT_EQ(names_in(sub), std::vector<std::string>{"peers.json"});
}

TEST_F(FsUtilTest, ReadFileMissingIsNulloptAndPresentIsWholeContent) {
  EXPECT_FALSE(read_file(dir_ / "absent").has_value());
  std::string big(200000, 'x');
  big[123456] = 'y';
  atomic_write_file(dir_ / "big", big);
  auto got = read_file(dir_ / "big");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, big);
}

TEST_F(FsUtilTest, ReadFileOrNothingTreatsAnUnreadableFileAsAbsent) {
  // A directory where a port or pid record should be: read_file refuses with an error, the
  // record readers (port, pid, socket path, .git link) must see "no record", not an exception.
  fs::create_directory(dir_ / "ws.port");
  EXPECT_THROW(read_file(dir_ / "ws.port"), std::system_error);
  EXPECT_FALSE(read_file_or_nothing(dir_ / "ws.port").has_value());
  EXPECT_FALSE(read_file_or_nothing(dir_ / "absent").has_value());
  std::ofstream(dir_ / "present") << "41234\n";
  EXPECT_EQ(read_file_or_nothing(dir_ / "present"), std::optional<std::string>("41234\n"));
}

TEST_F(FsUtilTest, CopyFileOnceNeverOverwritesTheBackup) {
  const fs::path src = dir_ / "config.json";
  const fs::path bak = dir_ / "config.json.pre-identity-bak";
  atomic_write_file(src, "before identity", 0644);
  EXPECT_TRUE(copy_file_once(src, bak));
  EXPECT_EQ(slurp(bak), "before identity");
  EXPECT_EQ(file_mode(bak), 0600);

  atomic_write_file(src, "after rotation", 0644);
  EXPECT_FALSE(copy_file_once(src, bak));
  EXPECT_EQ(slurp(bak), "before identity");
}

TEST_F(FsUtilTest, CopyFileOnceWithMissingSourceCopiesNothing) {
  EXPECT_FALSE(copy_file_once(dir_ / "absent", dir_ / "absent.bak"));
  EXPECT_FALSE(fs::exists(dir_ / "absent.bak"));
}

TEST_F(FsUtilTest, MoveAsideCorruptKeepsEveryCorruptCopy) {
  const fs::path f = dir_ / "peers.json";
  atomic_write_file(f, "garbage 1");
  auto a = move_aside_corrupt(f);
  atomic_write_file(f, "garbage 2");
  auto b = move_aside_corrupt(f);
  EXPECT_NE(a, b);
  EXPECT_FALSE(fs::exists(f));
  EXPECT_EQ(a.filename().string().rfind("peers.json.corrupt-", 0), 0u) << a;
  EXPECT_EQ(slurp(a), "garbage 1");
  EXPECT_EQ(slurp(b), "garbage 2");
}

TEST_F(FsUtilTest, EnsureDirCreatesParentsWithMode) {
  const fs::path d = dir_ / "a" / "b" / "var";
  ensure_dir(d, 0700);
  EXPECT_TRUE(fs::is_directory(d));
  EXPECT_EQ(file_mode(d), 0700);
  ::chmod(d.c_str(), 0755);
  ensure_dir(d, 0700);
  EXPECT_EQ(file_mode(d), 0700) << "an existing directory gets the mode too";
}

}  // namespace
}  // namespace thrum::core
