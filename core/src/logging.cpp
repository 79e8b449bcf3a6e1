#include "thrum/core/logging.hpp"

#include <cstdlib>

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace thrum::core {

void setup_daemon_logging(const std::filesystem::path& log_file) {
  auto file = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(log_file.string(),
                                                                     10 * 1024 * 1024, 4);
  auto logger = std::make_shared<spdlog::logger>("thrum", file);
  spdlog::level::level_enum level = spdlog::level::info;
  if (const char* env = std::getenv("THRUM_LOG_LEVEL"); env && *env)
    level = spdlog::level::from_str(env);
  logger->set_level(level);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace thrum::core
