#pragma once
// Temp dirs and fixture plugins for the plugin-host tests.

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <gtest/gtest.h>

namespace thrum::test {

namespace fs = std::filesystem;

/// A fresh directory under $TMPDIR, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("thrum-plugins-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

/// The built fixture `libthrum_transport_<id>.so`.
inline fs::path fixture(const std::string& id) {
  return fs::path(THRUM_FIXTURE_PLUGIN_DIR) / ("libthrum_transport_" + id + ".so");
}

/// Copies fixture `id` into `dir` as `name` (default: its own name), mode 0755.
inline fs::path install_fixture(const std::string& id, const fs::path& dir, std::string name = {}) {
  if (name.empty()) name = fixture(id).filename().string();
  fs::create_directories(dir);
  const fs::path to = dir / name;
  fs::copy_file(fixture(id), to, fs::copy_options::overwrite_existing);
  ::chmod(to.c_str(), 0755);
  return to;
}

inline void write_file(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

/// Sets (or unsets, for nullptr) an environment variable for the scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    if (value != nullptr)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_)
      ::setenv(name_.c_str(), old_.c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }

 private:
  std::string name_, old_;
  bool had_ = false;
};

}  // namespace thrum::test
