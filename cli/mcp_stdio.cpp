#include "mcp_stdio.hpp"

#include <unistd.h>

#include <cerrno>

namespace thrum::cli::mcp {

std::vector<LineSplitter::Line> LineSplitter::feed(std::string_view bytes) {
  std::vector<Line> out;
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    const std::string_view part = bytes.substr(0, nl);
    if (!skipping_) {
      if (buf_.size() + part.size() > max_) {
        buf_.clear();
        skipping_ = true;
        out.push_back(Line{"", true});
      } else {
        buf_.append(part);
      }
    }
    if (nl == std::string_view::npos) break;
    bytes.remove_prefix(nl + 1);
    if (skipping_) {
      skipping_ = false;
      continue;
    }
    if (!buf_.empty() && buf_.back() == '\r') buf_.pop_back();
    out.push_back(Line{std::move(buf_), false});
    buf_.clear();
  }
  return out;
}

std::optional<LineSplitter::Line> LineSplitter::finish() {
  if (skipping_ || buf_.empty()) return std::nullopt;
  Line l{std::move(buf_), false};
  buf_.clear();
  return l;
}

bool LineWriter::write_line(std::string_view line) {
  std::lock_guard<std::mutex> lock(mu_);
  if (failed_) return false;
  std::string data;
  data.reserve(line.size() + 1);
  data.append(line);
  data.push_back('\n');
  std::string_view rest = data;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      failed_ = true;
      return false;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace thrum::cli::mcp
