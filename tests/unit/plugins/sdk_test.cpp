#include <gtest/gtest.h>

#include "thrum/sdk/plugin.hpp"
#include "thrum/sdk/types.hpp"
#include "thrum/sdk/version.hpp"

namespace thrum::sdk {
namespace {

TEST(SdkTypes, ResultIsNeverOkAndEmpty) {
  Result<int> r = Status::success();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code, static_cast<int>(Errc::kInternal));
  Result<int> v = 7;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.value(), 7);
  EXPECT_TRUE(v.status().ok());
}

TEST(SdkTypes, ResultCarriesMoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(3);
  ASSERT_TRUE(r);
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 3);
}

TEST(SdkVersion, ToolchainTagNamesCompilerAndAbis) {
  const std::string tag = THRUM_SDK_TOOLCHAIN_TAG;
  EXPECT_EQ(tag.rfind("gcc/cxx11abi=", 0), 0u) << tag;
  EXPECT_NE(tag.find("/gxxabi=" + std::to_string(__GXX_ABI_VERSION)), std::string::npos) << tag;
}

TEST(SdkDescriptor, FirstFieldsNeverMove) {
  // Hosts of every ABI read these to explain a mismatch.
  EXPECT_EQ(offsetof(ThrumTransportPluginDescriptor, struct_size), 0u);
  EXPECT_EQ(offsetof(ThrumTransportPluginDescriptor, abi_major), 4u);
  EXPECT_EQ(offsetof(ThrumTransportPluginDescriptor, abi_minor), 6u);
}

}  // namespace
}  // namespace thrum::sdk

namespace thrum::sdk {
namespace {

struct Base {
  virtual ~Base() = default;
  virtual int n() const { return 1; }
};
struct Derived : Base {
  int n() const override { return 2; }
};

Result<std::unique_ptr<Base>> make_derived() {
  return std::make_unique<Derived>();
}

TEST(SdkTypes, ResultAcceptsConvertibleValues) {
  auto r = make_derived();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value()->n(), 2);
  Result<bool> failed = Status::error(Errc::kTimeout, "late");  // a Status is never a bool value
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().message, "late");
}

}  // namespace
}  // namespace thrum::sdk
