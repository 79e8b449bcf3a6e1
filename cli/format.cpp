#include "format.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <sstream>

#include "cli.hpp"
#include "thrum/common/ids.hpp"

namespace thrum::cli {

namespace {
std::chrono::seconds since(const std::string& ts) {
  auto t = core::parse_rfc3339(ts);
  if (!t) return std::chrono::seconds(-1);
  return std::chrono::duration_cast<std::chrono::seconds>(core::Clock::now() - *t);
}
std::string plural(long long n, const char* unit) {
  return std::to_string(n) + " " + unit + (n == 1 ? "" : "s") + " ago";
}
}  // namespace

void print_json_line(const json& doc) {
  std::cout << doc.dump(-1, ' ', false, json::error_handler_t::replace) << "\n" << std::flush;
}

std::string ago_short(const std::string& ts) {
  auto s = since(ts).count();
  if (s < 0) return ts.empty() ? "never" : ts;
  if (s < 60) return "just now";
  if (s < 3600) return std::to_string(s / 60) + "m ago";
  if (s < 86400) return std::to_string(s / 3600) + "h ago";
  if (s < 7 * 86400) return std::to_string(s / 86400) + "d ago";
  auto t = core::parse_rfc3339(ts);
  std::time_t tt = core::Clock::to_time_t(*t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%b %e", &tm);
  return buf;
}

std::string ago_long(const std::string& ts) {
  auto s = since(ts).count();
  if (s < 0) return ts.empty() ? "never" : ts;
  if (s < 60) return plural(s, "second");
  if (s < 3600) return plural(s / 60, "minute");
  if (s < 86400) return plural(s / 3600, "hour");
  return plural(s / 86400, "day");
}

std::string duration_short(std::chrono::seconds d) {
  long long s = d.count();
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m";
  if (s < 86400) {
    long long h = s / 3600, m = (s % 3600) / 60;
    return std::to_string(h) + "h" + (m ? std::to_string(m) + "m" : "");
  }
  long long dd = s / 86400, h = (s % 86400) / 3600;
  return std::to_string(dd) + "d" + (h ? std::to_string(h) + "h" : "");
}

std::chrono::milliseconds parse_duration(const std::string& s, const std::string& flag) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0)
    throw UsageError("Error: " + flag + " expects a duration like 30s, 2m or 500ms; got \"" + s +
                     "\"");
  double v = std::strtod(s.substr(0, i).c_str(), nullptr);
  std::string unit = s.substr(i);
  double ms;
  if (unit.empty() || unit == "s")
    ms = v * 1000;
  else if (unit == "ms")
    ms = v;
  else if (unit == "m")
    ms = v * 60000;
  else if (unit == "h")
    ms = v * 3600000;
  else
    throw UsageError("Error: " + flag + " expects a duration like 30s, 2m or 500ms; got \"" + s +
                     "\"");
  return std::chrono::milliseconds(static_cast<long long>(ms));
}

int terminal_width() {
  if (const char* c = std::getenv("COLUMNS"); c && std::atoi(c) > 0) return std::atoi(c);
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

namespace {

/// Decodes one UTF-8 code point at `i` (advancing it); invalid bytes decode as U+FFFD.
char32_t next_code_point(const std::string& s, std::size_t& i) {
  const auto b = static_cast<unsigned char>(s[i++]);
  int extra = b < 0x80 ? 0 : (b >> 5) == 0x6 ? 1 : (b >> 4) == 0xE ? 2 : (b >> 3) == 0x1E ? 3 : -1;
  if (extra < 0) return 0xFFFD;
  char32_t cp = extra == 0 ? b : b & (0x3F >> extra);
  for (int k = 0; k < extra; ++k) {
    if (i >= s.size() || (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) return 0xFFFD;
    cp = (cp << 6) | (static_cast<unsigned char>(s[i++]) & 0x3F);
  }
  return cp;
}

bool in(char32_t c, char32_t lo, char32_t hi) {
  return c >= lo && c <= hi;
}

}  // namespace

int column_width(char32_t c) {
  if (c == 0) return 0;
  if (c < 0x20 || in(c, 0x7F, 0x9F)) return 0;
  // Combining marks, zero-width space/joiners, variation selectors.
  if (in(c, 0x0300, 0x036F) || in(c, 0x0483, 0x0489) || in(c, 0x0591, 0x05BD) ||
      in(c, 0x0610, 0x061A) || in(c, 0x064B, 0x065F) || in(c, 0x1AB0, 0x1AFF) ||
      in(c, 0x1DC0, 0x1DFF) || in(c, 0x200B, 0x200F) || in(c, 0x20D0, 0x20FF) ||
      in(c, 0xFE00, 0xFE0F) || in(c, 0xFE20, 0xFE2F) || in(c, 0xE0100, 0xE01EF))
    return 0;
  // East Asian Wide / Fullwidth, and emoji presentation blocks.
  if (in(c, 0x1100, 0x115F) || in(c, 0x231A, 0x231B) || in(c, 0x2329, 0x232A) ||
      in(c, 0x23E9, 0x23EC) || in(c, 0x25FD, 0x25FE) || in(c, 0x2614, 0x2615) ||
      in(c, 0x2648, 0x2653) || in(c, 0x26AA, 0x26AB) || in(c, 0x26BD, 0x26BE) ||
      in(c, 0x26C4, 0x26C5) || in(c, 0x26F2, 0x26F5) || c == 0x26FA || c == 0x26FD || c == 0x2705 ||
      in(c, 0x270A, 0x270B) || c == 0x2728 || c == 0x274C || c == 0x274E || in(c, 0x2753, 0x2755) ||
      c == 0x2757 || in(c, 0x2795, 0x2797) || c == 0x27B0 || c == 0x27BF || in(c, 0x2B1B, 0x2B1C) ||
      c == 0x2B50 || c == 0x2B55 || in(c, 0x2E80, 0x303E) || in(c, 0x3041, 0x33FF) ||
      in(c, 0x3400, 0x4DBF) || in(c, 0x4E00, 0x9FFF) || in(c, 0xA000, 0xA4CF) ||
      in(c, 0xA960, 0xA97F) || in(c, 0xAC00, 0xD7A3) || in(c, 0xF900, 0xFAFF) ||
      in(c, 0xFE10, 0xFE19) || in(c, 0xFE30, 0xFE6F) || in(c, 0xFF00, 0xFF60) ||
      in(c, 0xFFE0, 0xFFE6) || in(c, 0x16FE0, 0x16FE4) || in(c, 0x17000, 0x18CFF) ||
      in(c, 0x1B000, 0x1B2FF) || c == 0x1F004 || c == 0x1F0CF || c == 0x1F18E ||
      in(c, 0x1F191, 0x1F19A) || in(c, 0x1F200, 0x1F251) || in(c, 0x1F300, 0x1F320) ||
      in(c, 0x1F32D, 0x1F335) || in(c, 0x1F337, 0x1F37C) || in(c, 0x1F37E, 0x1F393) ||
      in(c, 0x1F3A0, 0x1F3CA) || in(c, 0x1F3CF, 0x1F3D3) || in(c, 0x1F3E0, 0x1F3F0) ||
      c == 0x1F3F4 || in(c, 0x1F3F8, 0x1F43E) || c == 0x1F440 || in(c, 0x1F442, 0x1F4FC) ||
      in(c, 0x1F4FF, 0x1F53D) || in(c, 0x1F54B, 0x1F54E) || in(c, 0x1F550, 0x1F567) ||
      c == 0x1F57A || in(c, 0x1F595, 0x1F596) || c == 0x1F5A4 || in(c, 0x1F5FB, 0x1F64F) ||
      in(c, 0x1F680, 0x1F6C5) || c == 0x1F6CC || in(c, 0x1F6D0, 0x1F6D2) ||
      in(c, 0x1F6D5, 0x1F6D7) || in(c, 0x1F6DC, 0x1F6DF) || in(c, 0x1F6EB, 0x1F6EC) ||
      in(c, 0x1F6F4, 0x1F6FC) || in(c, 0x1F7E0, 0x1F7EB) || c == 0x1F7F0 ||
      in(c, 0x1F90C, 0x1F93A) || in(c, 0x1F93C, 0x1F945) || in(c, 0x1F947, 0x1F9FF) ||
      in(c, 0x1FA70, 0x1FAFF) || in(c, 0x20000, 0x2FFFD) || in(c, 0x30000, 0x3FFFD))
    return 2;
  return 1;
}

std::size_t display_width(const std::string& s) {
  std::size_t i = 0;
  // Printable ASCII is one column per byte (names, roles, statuses: nearly every cell).
  while (i < s.size() && static_cast<unsigned char>(s[i]) >= 0x20 &&
         static_cast<unsigned char>(s[i]) < 0x7F)
    ++i;
  std::size_t w = i;
  while (i < s.size()) w += static_cast<std::size_t>(column_width(next_code_point(s, i)));
  return w;
}

namespace {
/// The locale's verdict: nullopt when no locale variable is set, else whether it is UTF-8.
std::optional<bool> locale_is_utf8() {
  for (const char* var : {"LC_ALL", "LC_CTYPE", "LANG"}) {
    const char* v = std::getenv(var);
    if (!v || !*v) continue;
    std::string l;
    for (const char* p = v; *p; ++p)
      l += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
    return l.find("utf-8") != std::string::npos || l.find("utf8") != std::string::npos;
  }
  return std::nullopt;
}
}  // namespace

bool plain_output() {
  static const bool plain = [] {
    if (!::isatty(STDOUT_FILENO)) return true;
    if (const char* nc = std::getenv("NO_COLOR"); nc && *nc) return true;
    // The first of LC_ALL, LC_CTYPE, LANG that is set decides; without one, or with C/POSIX
    // or any non-UTF-8 locale, the terminal is not trusted with box drawing.
    return !locale_is_utf8().value_or(false);
  }();
  return plain;
}

bool ascii_only() {
  static const bool ascii = !locale_is_utf8().value_or(true);
  return ascii;
}

const char* glyph(const char* unicode, const char* ascii) {
  return ascii_only() ? ascii : unicode;
}

std::string pad(const std::string& s, std::size_t width) {
  auto w = display_width(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

std::string render_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], display_width(row[i]));
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i)
      line += i + 1 == row.size() ? row[i] : pad(row[i], widths[i]) + "  ";
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::vector<std::string> wrap(const std::string& text, std::size_t width) {
  // Every line keeps its indentation and inner spacing; a line too long for `width` breaks at
  // its last space that fits (hard-breaking a longer word), and its continuation lines keep
  // the indentation. Tabs become spaces up to the next multiple of 4.
  std::vector<std::string> out;
  std::istringstream lines(text);
  std::string raw;
  while (std::getline(lines, raw)) {
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    std::string line;
    for (char c : raw) {
      if (c == '\t')
        line.append(4 - display_width(line) % 4, ' ');
      else
        line += c;
    }
    std::size_t indent_bytes = line.find_first_not_of(' ');
    if (indent_bytes == std::string::npos) {
      out.push_back("");
      continue;
    }
    const std::string indent = display_width(line.substr(0, indent_bytes)) < width / 2
                                   ? line.substr(0, indent_bytes)
                                   : std::string();
    std::string rest = line;
    bool first = true;
    while (display_width(rest) > width) {
      // Find the byte where `width` columns end.
      std::size_t i = 0, cols = 0, last_space = std::string::npos;
      while (i < rest.size()) {
        std::size_t j = i;
        auto w = static_cast<std::size_t>(column_width(next_code_point(rest, j)));
        if (cols + w > width) break;
        if (rest[i] == ' ' && i >= (first ? indent_bytes : indent.size())) last_space = i;
        cols += w;
        i = j;
      }
      std::size_t cut = i < rest.size() && rest[i] == ' '                   ? i
                        : last_space != std::string::npos && last_space > 0 ? last_space
                                                                            : i;
      if (cut == 0) cut = 1;
      std::string head = rest.substr(0, cut);
      while (!head.empty() && head.back() == ' ') head.pop_back();
      out.push_back(head);
      std::size_t next = cut;
      while (next < rest.size() && rest[next] == ' ') ++next;
      rest = indent + rest.substr(next);
      first = false;
      if (display_width(rest) <= display_width(indent)) break;
    }
    while (!rest.empty() && rest.back() == ' ') rest.pop_back();
    if (!rest.empty() || first) out.push_back(rest);
  }
  if (out.empty()) out.push_back("");
  return out;
}

}  // namespace thrum::cli
