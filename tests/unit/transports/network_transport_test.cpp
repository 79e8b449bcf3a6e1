// The network transport's address rules, exercised on the plugin class itself.
#include <gtest/gtest.h>

#include "network_transport.hpp"

namespace {

using thrum::transport::network::NetworkTransport;
using thrum::transport::network::Subnet;

struct NullHost : thrum::sdk::IHost {
  virtual ~NullHost() = default;
  void log(thrum::sdk::LogLevel, std::string_view) noexcept override {}
};

TEST(NetworkTransport, AddressChangeMustStayInTheSameSlash24) {
  NullHost host;
  NetworkTransport t(&host);
  EXPECT_TRUE(t.validate_address_change({"198.51.100.10", 4000}, {"198.51.100.77", 4100}).ok());
  auto moved = t.validate_address_change({"198.51.100.10", 4000}, {"203.0.113.10", 4000});
  ASSERT_FALSE(moved.ok());
  EXPECT_NE(moved.message.find("same /24"), std::string::npos) << moved.message;
  EXPECT_NE(moved.message.find("198.51.100.10/24"), std::string::npos) << moved.message;
  EXPECT_FALSE(t.validate_address_change({"198.51.100.10", 4000}, {"198.51.101.10", 4000}).ok());
}

TEST(NetworkTransport, RefusesLoopbackTailnetAndLinkLocalAddresses) {
  NullHost host;
  NetworkTransport t(&host);
  EXPECT_NE(t.check_local_address("127.0.0.1").find("--type local"), std::string::npos);
  EXPECT_NE(t.check_local_address("100.64.1.5").find("--type tailscale"), std::string::npos);
  EXPECT_NE(t.check_local_address("169.254.3.4").find("link-local"), std::string::npos);
  EXPECT_NE(t.check_local_address("not-an-ip").find("not an IPv4"), std::string::npos);
  // TEST-NET-3 is never assigned to this machine's interfaces.
  EXPECT_NE(t.check_local_address("203.0.113.99").find("not assigned"), std::string::npos);
}

TEST(NetworkTransport, AdvertiseNeedsAnAddress) {
  NullHost host;
  NetworkTransport t(&host);
  auto r = t.advertise({"", 4000});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message.find("--address"), std::string::npos);
}

TEST(NetworkTransport, PolicySubnetsAreParsedAndEnforced) {
  NullHost host;
  NetworkTransport t(&host);
  EXPECT_FALSE(t.configure(R"({"allowed_subnets": ["198.51.100.0/33"]})").ok());
  EXPECT_FALSE(t.configure(R"({"allowed_subnets": "198.51.100.0/24"})").ok());
  ASSERT_TRUE(t.configure(R"({"enabled": true, "allowed_subnets": ["198.51.100.0/24"]})").ok());
  EXPECT_NE(t.check_local_address("203.0.113.5").find("allowed_subnets"), std::string::npos);
}

TEST(NetworkTransport, UnknownOptionIsRefusedNamingItAndTheKnownOnes) {
  NullHost host;
  NetworkTransport t(&host);
  // The typo used to be ignored, leaving the transport with no subnet rule at all.
  auto st = t.configure(R"({"allowed_subnet": ["198.51.100.0/24"]})");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message.find("unknown option \"allowed_subnet\" (known: allowed_subnets"),
            std::string::npos)
      << st.message;
}

TEST(NetworkTransport, OptionsAreDecodedAsJsonNotSearchedAsText) {
  NullHost host;
  NetworkTransport t(&host);
  // The key inside a string value, or nested, is not the option.
  EXPECT_FALSE(t.configure(R"({"note": "\"allowed_subnets\": [\"198.51.100.0/24\"]"})").ok());
  EXPECT_FALSE(t.configure(R"({"allowed_subnets": [1]})").ok());
  EXPECT_FALSE(t.configure("[]").ok());
  EXPECT_FALSE(t.configure("{\"allowed_subnets\": [\"\xff\"]}").ok());  // invalid UTF-8
  EXPECT_FALSE(t.configure(std::string(100, '[') + std::string(100, ']')).ok());
  auto bad = t.configure(R"({"allowed_subnets": ["198.51.100.0/24", "nope"]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message.find("\"nope\" is not an IPv4 CIDR"), std::string::npos) << bad.message;
  // A refused configure leaves no half-applied rule; a good one applies both subnets.
  ASSERT_TRUE(t.configure(R"({"allowed_subnets": ["198.51.100.0/24", "203.0.113.0/24"]})").ok());
  EXPECT_NE(t.check_local_address("192.0.2.1").find("allowed_subnets"), std::string::npos);
}

TEST(NetworkTransport, DialToAClosedPortFailsWithStatusNotException) {
  NullHost host;
  NetworkTransport t(&host);
  auto r = t.dial({"127.0.0.1", 9}, std::chrono::milliseconds(200));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message.find("--type local"), std::string::npos);
}

TEST(Subnet, ParsesCidrs) {
  Subnet s;
  ASSERT_TRUE(Subnet::parse("198.51.100.0/24", s));
  EXPECT_TRUE(s.contains(0xC6336401u));   // 198.51.100.1
  EXPECT_FALSE(s.contains(0xC6336501u));  // 198.51.101.1
  EXPECT_FALSE(Subnet::parse("198.51.100.0", s));
  EXPECT_FALSE(Subnet::parse("198.51.100.0/", s));
}

}  // namespace
