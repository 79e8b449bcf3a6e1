// Peercode errors say which field is wrong and never echo a field: with the fields out of
// order the secret code would land in the message (a terminal, a log, a bug report).
#include <string>

#include <gtest/gtest.h>

#include "thrum/common/peercode.hpp"

namespace thrum::core::pairing {
namespace {

const std::string kCode = "4815162342108877";

std::string error_for(const std::string& text) {
  std::string error;
  EXPECT_FALSE(parse_peercode(text, error)) << text;
  return error;
}

TEST(PeercodeErrors, CodeInTheIpFieldIsNotEchoed) {
  const std::string err = error_for("laptop:" + kCode + ":4100:1234");
  EXPECT_NE(err.find("ip field"), std::string::npos) << err;
  EXPECT_EQ(err.find(kCode), std::string::npos) << err;
}

TEST(PeercodeErrors, CodeInThePortFieldIsNotEchoed) {
  const std::string err = error_for("laptop:192.0.2.7:" + kCode + ":4100");
  EXPECT_NE(err.find("port field"), std::string::npos) << err;
  EXPECT_EQ(err.find(kCode), std::string::npos) << err;
}

TEST(PeercodeErrors, NoErrorEchoesAnyPartOfTheCode) {
  for (const std::string& bad :
       {"laptop:192.0.2.7:4100:" + kCode.substr(0, 10), "laptop:192.0.2.7:4100:" + kCode + "x",
        kCode, ":192.0.2.7:4100:" + kCode, "laptop:192.0.2.7:99999:" + kCode,
        "a:b:192.0.2.7:4100:" + kCode}) {
    const std::string err = error_for(bad);
    EXPECT_FALSE(err.empty());
    EXPECT_EQ(err.find(kCode.substr(0, 8)), std::string::npos) << err;
  }
}

TEST(PeercodeErrors, AGoodCodeParses) {
  std::string error;
  auto p = parse_peercode("laptop:192.0.2.7:4100:" + kCode, error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->port, 4100);
  EXPECT_EQ(p->code, kCode);
}

}  // namespace
}  // namespace thrum::core::pairing
