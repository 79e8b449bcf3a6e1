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
/// Terminal columns of one code point, with wcwidth() semantics (0 for controls and combining
/// marks, 2 for East Asian wide/fullwidth and emoji), from our own table so that the answer
/// does not depend on the locale.
int column_width(char32_t c);
/// Display width of UTF-8 text: the sum of column_width() over its code points.
std::size_t display_width(const std::string& s);
/// Whether human output must be plain text — no box drawing, no colour: stdout is not a
/// terminal, NO_COLOR is set, or the locale is not UTF-8 (LANG=C).
bool plain_output();
/// Whether the user's locale says the terminal cannot show anything but ASCII: LC_ALL,
/// LC_CTYPE or LANG (the first that is set) names a locale that is not UTF-8, e.g. LANG=C.
/// Without any of them we keep the marks (✓, ●): pipes and agents read UTF-8 fine.
bool ascii_only();
/// `unicode` unless ascii_only(), then `ascii`: the status marks of human output
/// (✓ → OK, ● → *, ○ → -, … → ..., — → --).
const char* glyph(const char* unicode, const char* ascii);
/// The mark before every confirmation line ("✓ Message sent: ...", "OK Message sent: ...").
inline const char* ok_mark() {
  return glyph("✓", "OK");
}
/// Pads `s` with spaces to `width` display columns.
std::string pad(const std::string& s, std::size_t width);
/// Rows as text columns sized to their content (display width), two spaces apart; the last
/// column is not padded. Each line ends with '\n'.
std::string render_table(const std::vector<std::vector<std::string>>& rows);
/// Wraps `text` to `width` columns, keeping line breaks, indentation and inner spacing.
std::vector<std::string> wrap(const std::string& text, std::size_t width);

}  // namespace thrum::cli
