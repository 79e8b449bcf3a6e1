#pragma once

// Small helpers for reading what the CLI and the daemon leave behind.

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace thrum::test {

/// The whole file, or "" when it cannot be read.
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Parses a `--json` command's stdout; a discarded value when it is not JSON.
inline nlohmann::json parse_json(const std::string& text) {
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

/// Permission bits of a path (e.g. 0600), or -1 when it does not exist.
inline int file_mode(const std::filesystem::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

/// The port in var/ws.port, if the file holds one.
inline std::optional<unsigned short> read_ws_port(const std::filesystem::path& var) {
  std::string s = slurp(var / "ws.port");
  try {
    size_t pos = 0;
    long v = std::stol(s, &pos);
    if (v < 1 || v > 65535) return std::nullopt;
    return static_cast<unsigned short>(v);
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace thrum::test
