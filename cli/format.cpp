#include "format.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <sstream>

#include "cli.hpp"
#include "thrum/core/ids.hpp"

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

std::size_t display_width(const std::string& s) {
  std::size_t w = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++w;
  return w;
}

std::string pad(const std::string& s, std::size_t width) {
  auto w = display_width(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

std::vector<std::string> wrap(const std::string& text, std::size_t width) {
  std::vector<std::string> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::string cur;
    std::istringstream words(line);
    std::string word;
    while (words >> word) {
      while (display_width(word) > width) {
        // Hard-break words longer than the line, at a code point boundary.
        size_t cut = 0, cols = 0;
        while (cut < word.size() && cols < width) {
          ++cut;
          while (cut < word.size() && (static_cast<unsigned char>(word[cut]) & 0xC0) == 0x80) ++cut;
          ++cols;
        }
        if (!cur.empty()) {
          out.push_back(cur);
          cur.clear();
        }
        out.push_back(word.substr(0, cut));
        word = word.substr(cut);
      }
      if (word.empty()) continue;
      if (cur.empty())
        cur = word;
      else if (display_width(cur) + 1 + display_width(word) <= width)
        cur += " " + word;
      else {
        out.push_back(cur);
        cur = word;
      }
    }
    out.push_back(cur);
  }
  if (out.empty()) out.push_back("");
  return out;
}

}  // namespace thrum::cli
