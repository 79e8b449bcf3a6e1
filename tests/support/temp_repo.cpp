#include "support/temp_repo.hpp"

#include <signal.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace thrum::test {
namespace fs = std::filesystem;

TempRepo::TempRepo(const std::string& name) {
  std::string tmpl = (fs::temp_directory_path() / "thrum-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  base_ = tmpl;
  root_ = base_ / name;
  fs::create_directories(root_);
  auto r = thrum({"init"});
  if (r.exit_code != 0) ADD_FAILURE() << "thrum init failed: " << r.err;
}

TempRepo::~TempRepo() {
  int pid = daemon_pid();
  if (pid > 0 && process_alive(pid)) {
    thrum({"daemon", "stop"});
    if (process_alive(pid)) ::kill(pid, SIGKILL);
    wait_until([&] { return !process_alive(pid); }, std::chrono::seconds(5));
  }
  std::error_code ec;
  if (!::getenv("THRUM_TEST_KEEP")) fs::remove_all(base_, ec);
}

RunResult TempRepo::thrum(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& env,
                          const std::optional<std::string>& stdin_data) const {
  return run_thrum(args, root_, env, stdin_data);
}

void TempRepo::start_daemon(const std::map<std::string, std::string>& env) {
  auto r = thrum({"daemon", "start"}, env);
  ASSERT_EQ(r.exit_code, 0) << "daemon start failed:\n"
                            << r.out << r.err << "\nlog:\n"
                            << daemon_log();
}

void TempRepo::stop_daemon() {
  auto r = thrum({"daemon", "stop"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
}

int TempRepo::daemon_pid() const {
  std::ifstream in(var() / "thrum.pid");
  if (!in) return -1;
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = nlohmann::json::parse(ss.str(), nullptr, false);
  if (doc.is_discarded() || !doc.contains("pid")) return -1;
  return doc["pid"].get<int>();
}

void TempRepo::register_agent(const std::string& name, const std::string& role) {
  auto r = thrum({"quickstart", "--name", name, "--role", role}, as(name));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
}

std::string TempRepo::daemon_log() const {
  std::string all;
  for (const auto& e : fs::directory_iterator(var())) {
    if (e.path().filename().string().rfind("daemon", 0) != 0) continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    all += ss.str();
  }
  return all;
}

}  // namespace thrum::test
