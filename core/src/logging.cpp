#include "thrum/core/logging.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace thrum::core {
namespace {

constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%fZ %l %v";

/// A size-rotated log file that can also be reopened by name (SIGHUP after an external
/// logrotate). spdlog's rotating sink cannot reopen, hence this one. Each reopen points fd 2 at
/// the new file as well, so that whatever the process writes to stderr follows the log.
class LogFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit LogFileSink(std::filesystem::path path) : path_(std::move(path)) { open_locked(); }
  ~LogFileSink() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void reopen() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_locked();
  }

  /// Takes effect from the next line.
  void set_rotation(const LogRotation& r) {
    std::lock_guard<std::mutex> lock(mutex_);
    rotation_ = r;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    if (size_ + buf.size() > rotation_.max_bytes && size_ > 0) rotate_locked();
    write_all(buf.data(), buf.size());
  }
  void flush_() override {}  // every line is one write(2) straight to the file

 private:
  void write_all(const char* p, std::size_t n) {
    if (fd_ < 0) return;
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return;  // a full disk loses log lines, never the daemon
      p += w;
      n -= static_cast<std::size_t>(w);
      size_ += static_cast<std::size_t>(w);
    }
  }

  void open_locked() {
    int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return;  // keep writing to the old file rather than nowhere
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
    off_t end = ::lseek(fd_, 0, SEEK_END);
    size_ = end > 0 ? static_cast<std::size_t>(end) : 0;
    ::dup2(fd_, STDERR_FILENO);
  }

  void rotate_locked() {
    const std::string base = path_.string();
    for (int i = rotation_.keep_files - 1; i >= 1; --i)
      ::rename((base + "." + std::to_string(i)).c_str(),
               (base + "." + std::to_string(i + 1)).c_str());
    ::rename(base.c_str(), (base + ".1").c_str());
    // Numbers past the count are what a start with a larger daemon.log_files left: nothing
    // would ever rotate or delete them. Only here, when this sink renumbers the files anyway,
    // so that a log nobody rotates (external logrotate, SIGHUP) keeps whatever it has.
    for (int i = rotation_.keep_files + 1; i <= LogRotation::kMaxKeepFiles; ++i)
      ::unlink((base + "." + std::to_string(i)).c_str());
    open_locked();
  }

  std::filesystem::path path_;
  LogRotation rotation_;  // defaults until the daemon has read its config
  int fd_ = -1;
  std::size_t size_ = 0;
};

std::shared_ptr<LogFileSink> g_file_sink;
std::string g_target = "stderr";

void install(spdlog::sink_ptr sink) {
  auto logger = std::make_shared<spdlog::logger>("thrum", std::move(sink));
  spdlog::level::level_enum level = spdlog::level::info;
  if (const char* env = std::getenv("THRUM_LOG_LEVEL"); env && *env)
    level = spdlog::level::from_str(env);
  logger->set_level(level);
  logger->set_pattern(kPattern, spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

}  // namespace

void setup_daemon_logging(const std::filesystem::path& log_file) {
  g_file_sink = std::make_shared<LogFileSink>(log_file);
  g_target = log_file.string();
  install(g_file_sink);
}

void setup_stderr_logging() {
  g_file_sink.reset();
  g_target = "stderr";
  install(std::make_shared<spdlog::sinks::stderr_sink_mt>());
}

void set_log_rotation(const LogRotation& rotation) {
  if (g_file_sink) g_file_sink->set_rotation(rotation);
}

void reopen_daemon_log() {
  if (g_file_sink) g_file_sink->reopen();
}

std::string daemon_log_target() {
  return g_target;
}

}  // namespace thrum::core
