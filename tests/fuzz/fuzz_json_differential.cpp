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

namespace {

void check(const char* what, const std::string& why) {
  if (why.empty()) return;
  std::fprintf(stderr, "json %s differs from nlohmann: %s\n", what, why.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using thrum::core::test::json_reader_differs;
  using thrum::core::test::json_writer_differs;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check("reader (depth 3)", json_reader_differs(text, 3));
  check("reader", json_reader_differs(text, thrum::core::kMaxJsonDepth));
  if (auto doc = thrum::core::parse_bounded(text)) check("writer", json_writer_differs(*doc));
  check("writer (the input as one string)", json_writer_differs(nlohmann::json(std::string(text))));
  return 0;
}
