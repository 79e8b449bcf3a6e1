// Thrum's JSON reader and writer (common/src/json_reader.hpp, json_writer.hpp) against
// nlohmann's parser and dump on the same bytes: the same texts accepted, the same values built
// (number types included), the same bytes written back, also for the input taken as one
// string of arbitrary bytes (tests/support/json_differential.hpp). Any difference aborts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "json_differential.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const int depth : {3, thrum::core::kMaxJsonDepth}) {
    const std::string why = thrum::core::test::json_reader_differs(text, depth);
    if (!why.empty()) {
      std::fprintf(stderr, "json reader differs from nlohmann (depth %d): %s\n", depth,
                   why.c_str());
      std::abort();
    }
  }
  auto check = [](const std::string& why) {
    if (!why.empty()) {
      std::fprintf(stderr, "json writer differs from nlohmann: %s\n", why.c_str());
      std::abort();
    }
  };
  if (auto doc = thrum::core::parse_bounded(text))
    check(thrum::core::test::json_writer_differs(*doc));
  check(thrum::core::test::json_writer_differs(nlohmann::json(std::string(text))));
  return 0;
}
