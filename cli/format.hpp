#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace thrum::cli {

/// "just now", "5m ago", "3h ago", "2d ago", else "Jan 2" (inbox, sent).
std::string ago_short(const std::string& rfc3339);
/// "5 seconds ago", "2 minutes ago", "3 hours ago", "4 days ago" (peer list).
std::string ago_long(const std::string& rfc3339);
/// "45s", "12m", "2h15m", "3d4h".
std::string duration_short(std::chrono::seconds d);
/// Parses "30s", "2m", "1h", "500ms" or a bare number of seconds. Throws UsageError.
std::chrono::milliseconds parse_duration(const std::string& s, const std::string& flag);

/// Columns of the terminal (COLUMNS, then the tty, then 80).
int terminal_width();
/// Display width of UTF-8 text (one column per code point; good enough for our glyphs).
std::size_t display_width(const std::string& s);
/// Pads `s` with spaces to `width` display columns.
std::string pad(const std::string& s, std::size_t width);
/// Word-wraps `text` to `width` columns, keeping explicit newlines.
std::vector<std::string> wrap(const std::string& text, std::size_t width);

}  // namespace thrum::cli
