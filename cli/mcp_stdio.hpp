#pragma once
// `thrum mcp serve`, layer 1: the stdio framing of MCP (newline-delimited JSON-RPC 2.0, one
// message per line, no embedded newlines). Splitting a byte stream into bounded lines and
// writing whole lines from several threads; nothing here knows MCP.

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thrum::cli::mcp {

/// Splits bytes into lines ('\n', an optional '\r' before it dropped). A line longer than
/// `max_line` is reported once as too long and skipped up to its end, so one bad message does
/// not end the session.
class LineSplitter {
 public:
  explicit LineSplitter(size_t max_line) : max_(max_line) {}

  struct Line {
    std::string text;
    bool too_long = false;  ///< text is empty then
  };
  /// Adds `bytes`; returns the lines they completed, in order.
  std::vector<Line> feed(std::string_view bytes);
  /// At end of input: the unterminated last line, if any.
  std::optional<Line> finish();

 private:
  size_t max_;
  std::string buf_;
  bool skipping_ = false;  ///< inside a line that passed max_
};

/// Writes whole lines to a file descriptor; safe to call from several threads (responses,
/// tool workers, the push listener). A write error (the client went away) is remembered and
/// later writes are dropped.
class LineWriter {
 public:
  explicit LineWriter(int fd) : fd_(fd) {}
  /// Writes `line` and a newline; false once the descriptor failed.
  bool write_line(std::string_view line);

 private:
  int fd_;
  std::mutex mu_;
  bool failed_ = false;
};

}  // namespace thrum::cli::mcp
