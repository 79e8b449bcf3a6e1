// Human output helpers of the CLI (issue 13 item 9): widths by wcwidth semantics, wrapping
// that keeps a body's structure, tables sized to their content.
#include "format.hpp"

#include <gtest/gtest.h>

namespace thrum::cli {
namespace {

TEST(DisplayWidth, CountsWideCharactersTwiceAndCombiningMarksNotAtAll) {
  EXPECT_EQ(display_width("abc"), 3u);
  EXPECT_EQ(display_width("世界"), 4u);
  EXPECT_EQ(display_width("🎉"), 2u);
  EXPECT_EQ(display_width("e\xCC\x81"), 1u);  // e + COMBINING ACUTE ACCENT
  EXPECT_EQ(display_width("│─✓"), 3u);
  EXPECT_EQ(display_width("\xFF"), 1u) << "an invalid byte still takes a column";
}

TEST(DisplayWidth, AsciiThenWideOrControlCharactersCountEachPart) {
  EXPECT_EQ(display_width("reviewer_api"), 12u);
  EXPECT_EQ(display_width("api 世界"), 8u) << "the ASCII prefix and the wide rest both count";
  EXPECT_EQ(display_width("a\tb"), 2u) << "a control character takes no column";
  EXPECT_EQ(display_width("ab\x7F"), 2u) << "DEL takes no column";
  EXPECT_EQ(display_width(""), 0u);
}

TEST(Pad, PadsToDisplayColumns) {
  EXPECT_EQ(pad("世", 4), "世  ");
  EXPECT_EQ(pad("abcdef", 4), "abcdef");
}

TEST(Wrap, KeepsLineBreaksIndentationAndInnerSpacing) {
  const auto lines = wrap("def f():\n    return  1\n\n\tx", 40);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "def f():");
  EXPECT_EQ(lines[1], "    return  1");
  EXPECT_EQ(lines[2], "");
  EXPECT_EQ(lines[3], "    x");
}

TEST(Wrap, LongLinesBreakAtSpacesAndContinueAtTheirIndentation) {
  const auto lines = wrap("  aaaa bbbb cccc", 11);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "  aaaa bbbb");
  EXPECT_EQ(lines[1], "  cccc");
  const auto hard = wrap("abcdefghij", 4);
  ASSERT_EQ(hard.size(), 3u);
  EXPECT_EQ(hard[0], "abcd");
  EXPECT_EQ(hard[2], "ij");
  for (const auto& l : wrap("世界世界世界", 5)) EXPECT_LE(display_width(l), 5u) << l;
}

TEST(RenderTable, ColumnsFitTheLongestCell) {
  const std::string t = render_table({{"NAME", "ROLE", "STATUS"},
                                      {"mock-sf:coordinator_main_long", "coordinator", "active"},
                                      {"世界", "x", "drift_reconcile_failed"}});
  EXPECT_EQ(t,
            "NAME                           ROLE         STATUS\n"
            "mock-sf:coordinator_main_long  coordinator  active\n"
            "世界                           x            drift_reconcile_failed\n");
}

}  // namespace
}  // namespace thrum::cli
