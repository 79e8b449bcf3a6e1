#include "thrum/core/plugin_loader.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "plugin_test_util.hpp"
#include "thrum/sdk/version.hpp"

namespace thrum::core {
namespace {

using test::fixture;
using test::install_fixture;
using test::TempDir;

// The last stage is the refusing one, and the refusal names stage and detail.
void expect_refused(const LoadReport& r, const std::string& stage, const std::string& detail_part) {
  ASSERT_FALSE(r.ok()) << "expected a refusal at " << stage;
  EXPECT_EQ(r.stages.back().stage, stage) << r.refusal();
  EXPECT_NE(r.refusal().find("refused: " + stage + ": "), std::string::npos) << r.refusal();
  EXPECT_NE(r.refusal().find(detail_part), std::string::npos) << r.refusal();
  EXPECT_FALSE(r.transport);
}

TEST(PluginLoader, LoadsHealthyPluginThroughEveryStage) {
  PluginLoader loader;
  LoadReport r = loader.load(fixture("good"));
  ASSERT_TRUE(r.ok()) << r.refusal();
  ASSERT_TRUE(r.transport);
  EXPECT_EQ(r.transport->id(), "good");
  EXPECT_EQ(r.info.id, "good");
  EXPECT_EQ(r.info.version, "0.0.1");
  EXPECT_EQ(r.info.abi,
            std::to_string(THRUM_SDK_ABI_MAJOR) + "." + std::to_string(THRUM_SDK_ABI_MINOR));
  EXPECT_EQ(r.info.toolchain, THRUM_SDK_TOOLCHAIN_TAG);
  std::vector<std::string> names;
  for (const auto& s : r.stages) names.push_back(s.stage);
  EXPECT_EQ(names, (std::vector<std::string>{"file name", "file mode", "shared library", "symbol",
                                             "load", "struct size", "abi", "toolchain", "id",
                                             "factory", "create", "configure"}));
}

TEST(PluginLoader, RefusesAbiMajorMismatchWithPath) {
  LoadReport r = PluginLoader().load(fixture("abi_major"));
  expect_refused(r, "abi", "plugin ABI 2.0, host supports 1.x");
  EXPECT_EQ(r.path, fixture("abi_major"));
}

TEST(PluginLoader, RefusesNewerAbiMinor) {
  LoadReport r = PluginLoader().load(fixture("abi_minor"));
  expect_refused(r, "abi",
                 "plugin ABI " + std::to_string(THRUM_SDK_ABI_MAJOR) + "." +
                     std::to_string(THRUM_SDK_ABI_MINOR + 1) + " is newer than the host's " +
                     std::to_string(THRUM_SDK_ABI_MAJOR) + "." +
                     std::to_string(THRUM_SDK_ABI_MINOR));
}

TEST(PluginLoader, RefusesShortDescriptor) {
  expect_refused(PluginLoader().load(fixture("struct_size")), "struct size",
                 "descriptor is 16 bytes");
}

TEST(PluginLoader, RefusesMissingEntrySymbol) {
  expect_refused(PluginLoader().load(fixture("missing_entry")), "symbol",
                 "missing entry symbol thrum_transport_plugin");
}

TEST(PluginLoader, RefusesNullFactory) {
  expect_refused(PluginLoader().load(fixture("null_factory")), "factory", "null factory");
}

TEST(PluginLoader, RefusesThrowingFactoryAndSaysWhatItThrew) {
  expect_refused(PluginLoader().load(fixture("throwing_factory")), "create",
                 "factory threw: cannot open /dev/thrum-fixture");
}

TEST(PluginLoader, RefusesFactoryReturningNull) {
  expect_refused(PluginLoader().load(fixture("null_return")), "create", "factory returned null");
}

TEST(PluginLoader, RefusesDifferentToolchainTag) {
  expect_refused(PluginLoader().load(fixture("toolchain")), "toolchain",
                 "plugin built with \"clang/cxx11abi=0/gxxabi=1002\"");
}

TEST(PluginLoader, RefusesLibraryThatDoesNotLink) {
  expect_refused(PluginLoader().load(fixture("unresolved")), "load",
                 "thrum_fixture_symbol_that_does_not_exist");
}

TEST(PluginLoader, RefusesDescriptorIdDifferentFromFileName) {
  expect_refused(PluginLoader().load(fixture("id_mismatch")), "id",
                 "descriptor id \"other\" does not match the file name's \"id_mismatch\"");
}

TEST(PluginLoader, RefusesDuplicateIdNamingTheFirstPath) {
  TempDir a, b;
  const auto first = install_fixture("good", a.path());
  const auto second = install_fixture("good", b.path());
  std::map<std::string, std::filesystem::path> taken{{"good", first}};
  PluginLoader::Request req;
  req.taken = &taken;
  LoadReport r = PluginLoader().load(second, req);
  expect_refused(r, "id", "duplicate id \"good\" (already loaded from " + first.string() + ")");
  EXPECT_EQ(r.path, second);
}

TEST(PluginLoader, RefusesGroupWritableFile) {
  TempDir d;
  const auto p = install_fixture("good", d.path());
  ASSERT_EQ(::chmod(p.c_str(), 0775), 0);
  expect_refused(PluginLoader().load(p), "file mode", "mode 0775 is group/world-writable");
}

TEST(PluginLoader, RefusesWorldWritableFile) {
  TempDir d;
  const auto p = install_fixture("good", d.path());
  ASSERT_EQ(::chmod(p.c_str(), 0757), 0);
  expect_refused(PluginLoader().load(p), "file mode", "chmod go-w " + p.string());
}

TEST(PluginLoader, RefusesFileThatIsNotASharedLibrary) {
  TempDir d;
  const auto p = d / "libthrum_transport_text.so";
  test::write_file(p, "#!/bin/sh\necho not a library\n");
  ::chmod(p.c_str(), 0644);
  expect_refused(PluginLoader().load(p), "shared library", "not an ELF file");
}

TEST(PluginLoader, RefusesWrongFileName) {
  TempDir d;
  for (const char* name : {"thrum_transport_good.so", "libthrum_transport_Good.so",
                           "libthrum_transport_.so", "libfoo.so"}) {
    const auto p = install_fixture("good", d.path(), name);
    expect_refused(PluginLoader().load(p), "file name", name);
  }
}

TEST(PluginLoader, CheckWithoutInstantiateRunsNoFactory) {
  PluginLoader::Request req;
  req.instantiate = false;
  LoadReport r = PluginLoader().load(fixture("throwing_factory"), req);
  EXPECT_TRUE(r.ok()) << r.refusal();
  EXPECT_EQ(r.stages.back().stage, "factory");
  EXPECT_FALSE(r.transport);
}

TEST(PluginLoader, PassesOptionsToConfigureAndRefusesOnFailure) {
  PluginLoader::Request req;
  req.options_json = R"({"fail": "allowed_subnets is not a list"})";
  expect_refused(PluginLoader().load(fixture("good"), req), "configure",
                 "allowed_subnets is not a list");
}

TEST(PluginLoader, IdFromFileName) {
  EXPECT_EQ(PluginLoader::id_from_file_name("libthrum_transport_uds.so"), "uds");
  EXPECT_EQ(PluginLoader::id_from_file_name("libthrum_transport_a_1.so"), "a_1");
  EXPECT_EQ(PluginLoader::id_from_file_name("libthrum_transport_uds.so.1"), std::nullopt);
  EXPECT_EQ(PluginLoader::id_from_file_name("libthrum_transport_u-ds.so"), std::nullopt);
}

}  // namespace
}  // namespace thrum::core

namespace thrum::core {
namespace {

TEST(PluginLoader, RefusesFileOwnedBySomeoneElse) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown the fixture";
  test::TempDir d;
  const auto p = test::install_fixture("good", d.path());
  ASSERT_EQ(::chown(p.c_str(), 65534, 65534), 0);
  LoadReport r = PluginLoader().load(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.refusal(),
            "refused: file mode: owned by uid 65534, expected root or the daemon's user (uid 0)");
}

}  // namespace
}  // namespace thrum::core
