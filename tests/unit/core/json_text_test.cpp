// Thrum's JSON reader and writer against nlohmann's parser and dump: the same texts accepted,
// the same values built (number types included), the same bytes written, for hand-picked edge
// cases and for generated and mutated documents. The fuzz target `json_differential` runs the
// same comparisons under libFuzzer.
#include "json_reader.hpp"
#include "json_utf8.hpp"

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "json_differential.hpp"
#include "thrum/common/bounded_json.hpp"

namespace thrum::core {
namespace {

using nlohmann::json;

/// What nlohmann makes of `text`, or nothing.
std::optional<json> reference(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return std::nullopt;
  return doc;
}

void expect_same_as_nlohmann(std::string_view text) {
  const std::string why = test::json_reader_differs(text, 64);
  EXPECT_TRUE(why.empty())
      << why << "\n  input: "
      << json(std::string(text)).dump(-1, ' ', true, json::error_handler_t::replace);
}

TEST(JsonReader, AgreesWithNlohmannOnEdgeCases) {
  const std::vector<std::string> cases = {
      // scalars and their number types
      "0",
      "-0",
      "1",
      "-1",
      "0.0",
      "-0.0",
      "1e2",
      "1E+2",
      "1e-2",
      "2.5",
      "123456789",
      "18446744073709551615",
      "18446744073709551616",
      "-9223372036854775808",
      "-9223372036854775809",
      "9223372036854775808",
      "1e308",
      "1e309",
      "-1e309",
      "1e-400",
      "4.9e-324",
      "2.2250738585072011e-308",
      "0.1",
      "1.7976931348623157e308",
      "123.456e-7",
      "true",
      "false",
      "null",
      // malformed numbers
      "01",
      "-",
      "+1",
      "1.",
      ".5",
      "1e",
      "1e+",
      "--1",
      "0x10",
      "1.5.5",
      "Infinity",
      "NaN",
      "-01",
      "00",
      "1 2",
      // literals
      "tru",
      "truee",
      "nul",
      "True",
      "[true,false,null]",
      // strings and escapes
      "\"\"",
      "\"a\"",
      "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
      "\"\\u0000\"",
      "\"\\u00e9\"",
      "\"\\u20AC\"",
      "\"\\uD83D\\uDE00\"",
      "\"\\uD83D\"",
      "\"\\uDE00\"",
      "\"\\uD83Dx\"",
      "\"\\uD83D\\u0041\"",
      "\"\\u12\"",
      "\"\\u12G4\"",
      "\"\\x\"",
      "\"\\",
      "\"abc",
      "\"a\tb\"",
      "\"a\nb\"",
      std::string("\"a\0b\"", 5),
      "\"\x7f\"",
      // UTF-8: valid, overlong, surrogates, past U+10FFFF, truncated
      "\"\xC3\xA9\"",
      "\"\xE2\x82\xAC\"",
      "\"\xF0\x9F\x98\x80\"",
      "\"\xC0\xAF\"",
      "\"\xC1\xBF\"",
      "\"\xE0\x80\xAF\"",
      "\"\xED\xA0\x80\"",
      "\"\xF4\x90\x80\x80\"",
      "\"\xF5\x80\x80\x80\"",
      "\"\xC3\"",
      "\"\xE2\x82\"",
      "\"\x80\"",
      "\"\xFF\"",
      "\xC3\xA9",
      // BOM
      "\xEF\xBB\xBF{}",
      "\xEF\xBB{}",
      "\xEF{}",
      " \xEF\xBB\xBF{}",
      "\xEF\xBB\xBF",
      // containers
      "[]",
      "{}",
      "[1,2,3]",
      "[1,]",
      "[,1]",
      "[1 2]",
      "{\"a\":1}",
      "{\"a\":1,}",
      "{\"a\"}",
      "{\"a\" 1}",
      "{a:1}",
      "{\"a\":1,\"a\":2}",
      "{\"a\":[1],\"a\":{\"b\":null}}",
      "{\"b\":1,\"a\":2}",
      "[[[]]]",
      "[{\"x\":[{}]}]",
      "{\"\":0}",
      "[",
      "]",
      "{",
      "}",
      "[1",
      "{\"a\":",
      "{\"a\":1",
      "[]]",
      "{}}",
      "[1]x",
      // whitespace
      " \t\r\n[ 1 , 2 ] \n",
      "\f1",
      "\v1",
      "[\u00a01]",
      "",
      " ",
      "\n",
      // comments are not JSON
      "//c\n1",
      "/*c*/1",
      "1//c",
      // NUL outside strings: where nlohmann stops reading (the one difference, checked by
      // the differential as "agrees up to the NUL")
      std::string("1\0", 2),
      std::string("[1]\0x", 5),
      std::string("\0", 1),
  };
  for (const auto& c : cases) expect_same_as_nlohmann(c);
}

TEST(JsonReader, RefusesANulByteThatNlohmannWouldStopAt) {
  // nlohmann reads `{"a":1}\0{"b":2}` as {"a":1}; nothing may hide behind a NUL here.
  const std::string text("{\"a\":1}\0{\"b\":2}", 15);
  EXPECT_TRUE(reference(text).has_value());
  json v;
  EXPECT_EQ(json_reader::read(text, 8, v), json_reader::Result::kSyntax);
  EXPECT_FALSE(parse_bounded(text).has_value());
}

TEST(JsonText, SkipPlainStopsAtTheFirstByteThatNeedsAttentionWhereverItIs) {
  // Eight bytes at a time, then one by one: every position against every kind of byte.
  for (const int special : {0x00, 0x01, 0x1F, 0x22, 0x5C, 0x80, 0xC3, 0xFF}) {
    for (size_t at = 0; at < 24; ++at) {
      std::string s(24, 'a');
      s[at] = static_cast<char>(special);
      const auto* b = reinterpret_cast<const unsigned char*>(s.data());
      EXPECT_EQ(json_utf8::skip_plain(b, b + s.size()) - b, static_cast<long>(at))
          << "byte " << special << " at " << at;
    }
  }
  for (const int plain : {0x20, 0x21, 0x23, 0x5B, 0x5D, 0x5A, 0x7E, 0x7F}) {
    std::string s(19, static_cast<char>(plain));
    const auto* b = reinterpret_cast<const unsigned char*>(s.data());
    EXPECT_EQ(json_utf8::skip_plain(b, b + s.size()), b + s.size()) << "byte " << plain;
  }
}

TEST(JsonReader, NumberTypesMatchNlohmanns) {
  // The check above compares types too; spelled out for the three a handler can meet.
  json v;
  ASSERT_EQ(json_reader::read("7", 8, v), json_reader::Result::kOk);
  EXPECT_TRUE(v.is_number_unsigned());
  ASSERT_EQ(json_reader::read("-7", 8, v), json_reader::Result::kOk);
  EXPECT_TRUE(v.is_number_integer() && !v.is_number_unsigned());
  ASSERT_EQ(json_reader::read("18446744073709551616", 8, v), json_reader::Result::kOk);
  EXPECT_TRUE(v.is_number_float());
  EXPECT_EQ(json_reader::read("1e999", 8, v), json_reader::Result::kSyntax);
}

TEST(JsonReader, RefusesDepthAsItGoesAndKeepsParseBoundedsRefusals) {
  json v;
  EXPECT_EQ(json_reader::read("[[1]]", 2, v), json_reader::Result::kOk);
  EXPECT_EQ(json_reader::read("[[[1]]]", 2, v), json_reader::Result::kTooDeep);
  EXPECT_EQ(json_reader::read("{\"a\":{\"b\":{}}}", 2, v), json_reader::Result::kTooDeep);
  // Deep but malformed before the limit is reached: parse_bounded still calls it too deep,
  // as the separate pre-pass it replaced did.
  JsonRefusal why;
  EXPECT_FALSE(parse_bounded("x" + std::string(100, '['), &why).has_value());
  EXPECT_EQ(why.kind, JsonRefusal::Kind::kTooDeep);
  EXPECT_FALSE(parse_bounded("[1,]", &why).has_value());
  EXPECT_EQ(why.kind, JsonRefusal::Kind::kSyntax);
  EXPECT_EQ(why.message, "not valid JSON (or not valid UTF-8)");
}

TEST(JsonReader, ParsesARealPeerFrameAsNlohmannDoes) {
  const std::string frame =
      R"({"jsonrpc":"2.0","id":17,"method":"peer.deliver","params":{"messages":[{"message_id":)"
      R"("msg_01JZ","author":"coordinator_main","to":["@reviewer_api"],"body":"Look at )"
      R"(\"src/x.cc\":\n\tline 3 \u2014 ok? \ud83d\ude00","format":"markdown","created_at":)"
      R"("2026-12-06T21:00:00.123Z","origin_daemon":"d_5f","reply_to":null,"n":-3.25e2}]}})";
  expect_same_as_nlohmann(frame);
  auto doc = parse_bounded(frame);
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ((*doc)["params"]["messages"][0]["body"].get<std::string>(),
            "Look at \"src/x.cc\":\n\tline 3 \xE2\x80\x94 ok? \xF0\x9F\x98\x80");
}

/// Random documents from the grammar, with characters a lexer gets wrong.
class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  std::string document() {
    std::string out;
    value(out, 0);
    return out;
  }

  /// A document with a few bytes changed, inserted or deleted.
  std::string mutated() {
    std::string s = document();
    const int edits = 1 + pick(3);
    for (int i = 0; i < edits && !s.empty(); ++i) {
      const size_t at = pick(static_cast<int>(s.size()));
      switch (pick(3)) {
        case 0:
          s[at] = byte();
          break;
        case 1:
          s.insert(s.begin() + static_cast<long>(at), byte());
          break;
        default:
          s.erase(at, 1);
      }
    }
    return s;
  }

 private:
  int pick(int n) { return static_cast<int>(rng_() % static_cast<uint32_t>(n)); }

  template <class List>
  const auto& one_of(const List& list) {
    return list[pick(static_cast<int>(std::size(list)))];
  }

  char byte() {
    static const std::string interesting = "{}[]\",:\\/u0123456789abcdefABCDEF.eE+- \t\n\r\x01\x7f";
    if (pick(4) == 0) return static_cast<char>(pick(256));
    return one_of(interesting);
  }

  void string_literal(std::string& out) {
    static const char* const pieces[] = {"a",
                                         "Z",
                                         " ",
                                         "\\\"",
                                         "\\\\",
                                         "\\/",
                                         "\\n",
                                         "\\t",
                                         "\\u0041",
                                         "\\u00e9",
                                         "\\uD834\\uDD1E",
                                         "\\uDD1E",
                                         "\xC3\xA9",
                                         "\xE2\x82\xAC",
                                         "\xF0\x9F\x98\x80",
                                         "\xED\xA0\x80",
                                         "\xC0\x80",
                                         "{["};
    out += '"';
    const int n = pick(6);
    for (int i = 0; i < n; ++i) out += one_of(pieces);
    out += '"';
  }

  void number(std::string& out) {
    static const char* const numbers[] = {"0",
                                          "-0",
                                          "7",
                                          "-7",
                                          "3.25",
                                          "-3.25e2",
                                          "1e400",
                                          "1e-400",
                                          "1E+3",
                                          "0.5e-3",
                                          "18446744073709551615",
                                          "18446744073709551616",
                                          "-9223372036854775808",
                                          "-9223372036854775809",
                                          "123456789012345678901234567890"};
    out += one_of(numbers);
  }

  void space(std::string& out) {
    static const char* const spaces[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
    out += one_of(spaces);
  }

  void value(std::string& out, int depth) {
    const int kind = depth > 5 ? pick(4) : pick(6);
    switch (kind) {
      case 0:
      case 3:  // numbers twice as often: most of the reader's cases are there
        number(out);
        break;
      case 1:
        string_literal(out);
        break;
      case 2:
        out += pick(2) ? "true" : (pick(2) ? "false" : "null");
        break;
      case 4: {
        out += '[';
        const int n = pick(4);
        for (int i = 0; i < n; ++i) {
          if (i) out += ',';
          space(out);
          value(out, depth + 1);
          space(out);
        }
        out += ']';
        break;
      }
      default: {
        out += '{';
        const int n = pick(4);
        for (int i = 0; i < n; ++i) {
          if (i) out += ',';
          space(out);
          // Few distinct keys, so duplicates happen.
          out += "\"k" + std::to_string(pick(3)) + "\"";
          space(out);
          out += ':';
          space(out);
          value(out, depth + 1);
        }
        out += '}';
      }
    }
  }

  std::mt19937 rng_;
};

TEST(JsonReader, AgreesWithNlohmannOnGeneratedDocuments) {
  Generator g(20261206);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string text = g.document();
    if (reference(text)) ++accepted;
    expect_same_as_nlohmann(text);
  }
  EXPECT_GT(accepted, 15000);  // the generator mostly writes valid JSON (overflows aside)
}

TEST(JsonReader, AgreesWithNlohmannOnMutatedDocuments) {
  Generator g(7);
  int accepted = 0;
  int refused = 0;
  for (int i = 0; i < 30000; ++i) {
    const std::string text = g.mutated();
    (reference(text) ? accepted : refused)++;
    expect_same_as_nlohmann(text);
  }
  // Both outcomes are exercised in numbers.
  EXPECT_GT(accepted, 1000);
  EXPECT_GT(refused, 10000);
}

void expect_written_as_nlohmann(const json& j) {
  const std::string why = test::json_writer_differs(j);
  EXPECT_TRUE(why.empty()) << why << "\n  value: "
                           << j.dump(-1, ' ', true, json::error_handler_t::replace);
}

TEST(JsonWriter, WritesEdgeCasesAsNlohmannDoes) {
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  std::string controls;
  for (int c = 0; c < 0x20; ++c) controls.push_back(static_cast<char>(c));
  const std::vector<json> values = {
      nullptr,
      true,
      false,
      0,
      -1,
      7u,
      json(std::numeric_limits<int64_t>::min()),
      json(std::numeric_limits<uint64_t>::max()),
      0.0,
      -0.0,
      1.0,
      0.1,
      1e300,
      -2.5e-7,
      std::numeric_limits<double>::infinity(),
      std::nan(""),
      "",
      "plain",
      "quote \" back \\",
      controls,
      "\x7f del",
      "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
      "bad \xC3",
      "bad \xFF\xFE tail",
      "\xED\xA0\x80 surrogate",
      "\xC0\xAF overlong",
      all_bytes,
      json::array(),
      json::object(),
      json::array({1, "a", nullptr, json::object()}),
      json{{"b", 1}, {"a", json::array({true})}, {"\n", "x"}, {"k\xFF", "invalid key"}},
      json::binary({1, 2, 3}),
  };
  for (const auto& v : values) expect_written_as_nlohmann(v);
  EXPECT_EQ(dump_compact(json("a\tb\u0001")), "\"a\\tb\\u0001\"");
}

TEST(JsonWriter, WritesGeneratedDocumentsAsNlohmannDoes) {
  Generator g(99);
  int written = 0;
  for (int i = 0; i < 20000; ++i) {
    if (auto doc = reference(g.document())) {
      expect_written_as_nlohmann(*doc);
      ++written;
    }
  }
  EXPECT_GT(written, 15000);
}

TEST(JsonWriter, WritesArbitraryBytesInStringsAsNlohmannDoes) {
  // Strings from a database or a file need not be UTF-8: the writer must repair them exactly
  // as nlohmann's replace handler does (it hands them over).
  std::mt19937 rng(5);
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 12, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 4 == 0 ? 0x80 + rng() % 0x80 : rng() % 0x80);
    expect_written_as_nlohmann(json(s));
    expect_written_as_nlohmann(json{{s, s}});
    std::string literal = "x";  // appended to what is there
    append_json_string(literal, s);
    EXPECT_EQ(literal, "x" + json(s).dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

}  // namespace
}  // namespace thrum::core
