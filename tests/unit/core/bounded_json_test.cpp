#include "thrum/common/bounded_json.hpp"

#include <gtest/gtest.h>

namespace thrum::core {
namespace {

std::string nested(int depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(BoundedJson, RefusesDeepNestingWithoutBuildingIt) {
  JsonRefusal why;
  // 60,000 levels: copying such a value recursed off the stack (issue 11, finding 1).
  EXPECT_FALSE(parse_bounded(nested(60000), &why).has_value());
  EXPECT_EQ(why.kind, JsonRefusal::Kind::kTooDeep);
  EXPECT_NE(why.message.find("deeper than 32"), std::string::npos);
}

TEST(BoundedJson, AcceptsDocumentsAtTheLimit) {
  auto doc = parse_bounded(nested(kMaxJsonDepth));
  ASSERT_TRUE(doc.has_value());
  EXPECT_TRUE(doc->is_array());
  EXPECT_FALSE(parse_bounded(nested(kMaxJsonDepth + 1)).has_value());
}

TEST(BoundedJson, BracketsInsideStringsDoNotCount) {
  const std::string deep_text = "{\"a\":\"" + std::string(500, '[') + "\\\"" + "\"}";
  auto doc = parse_bounded(deep_text);
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ((*doc)["a"].get<std::string>().size(), 501u);
}

TEST(BoundedJson, MixedObjectsAndArraysCountTogether) {
  std::string t;
  for (int i = 0; i < 20; ++i) t += "{\"k\":[";
  t += "1";
  for (int i = 0; i < 20; ++i) t += "]}";
  EXPECT_EQ(json_nesting_depth(t, 100), 40);
  EXPECT_FALSE(parse_bounded(t).has_value());
  EXPECT_TRUE(parse_bounded(t, nullptr, 40).has_value());
}

TEST(BoundedJson, RefusesInvalidJsonAndInvalidUtf8) {
  JsonRefusal why;
  EXPECT_FALSE(parse_bounded("{\"a\":", &why).has_value());
  EXPECT_EQ(why.kind, JsonRefusal::Kind::kSyntax);
  EXPECT_FALSE(parse_bounded("\"\xff\xfe\"", &why).has_value());
  EXPECT_EQ(why.kind, JsonRefusal::Kind::kSyntax);
}

TEST(BoundedJson, RefusesOversizedText) {
  JsonRefusal why;
  EXPECT_FALSE(parse_bounded("[1,2,3]", &why, kMaxJsonDepth, 4).has_value());
  EXPECT_EQ(why.kind, JsonRefusal::Kind::kTooLarge);
}

TEST(BoundedJson, OrderedDocumentsKeepKeyOrder) {
  auto doc = parse_bounded_ordered("{\"z\":1,\"a\":2}");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->begin().key(), "z");
}

TEST(BoundedJson, DumpReplacesInvalidUtf8InsteadOfThrowing) {
  nlohmann::json j = std::string("ok\xff");
  EXPECT_EQ(dump_compact(j), "\"ok\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace thrum::core
