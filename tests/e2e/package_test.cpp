// The Debian packages (issue 15 "Done when"): cpack builds them from this (ci) build tree,
// lintian finds no errors in any, `dpkg --root` installs them into a throwaway root, and the
// two-repo demo (scripts/demo-run.sh) runs from the installed binaries: the installed layout
// finds its plugins, man pages, completions and the systemd unit are where Debian expects them.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/helpers.hpp"
#include "support/process.hpp"

namespace thrum::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class Packages : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "thrum-pkg-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    work_ = tmpl;
    // CPack's own staging goes to the build tree's _CPack_Packages: one cpack at a time.
    auto r = run_process("/usr/bin/cpack", {"-G", "DEB", "-B", (work_ / "debs").string()},
                         THRUM_BUILD_DIR, {}, std::nullopt, 600s);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    for (const auto& e : fs::directory_iterator(work_ / "debs"))
      // The -dbgsym packages are .ddeb (CPack's name; dpkg and lintian take them as any .deb).
      if (e.path().extension() == ".deb" || e.path().extension() == ".ddeb")
        debs_.push_back(e.path());
    std::sort(debs_.begin(), debs_.end());
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    if (!::getenv("THRUM_TEST_KEEP")) fs::remove_all(work_, ec);
  }
  static std::set<std::string> names() {
    std::set<std::string> out;
    for (const auto& d : debs_)
      out.insert(d.filename().string().substr(0, d.filename().string().find('_')));
    return out;
  }
  static fs::path deb(const std::string& name) {
    for (const auto& d : debs_)
      if (d.filename().string().rfind(name + "_", 0) == 0) return d;
    return {};
  }

  // One test: cpack runs once (it stages in the build tree) and each part needs the packages.
  void three_packages_with_debug_symbols();
  void lintian_reports_no_errors();
  void installed_the_two_repo_demo_runs();

  static inline fs::path work_;
  static inline std::vector<fs::path> debs_;
};

void Packages::three_packages_with_debug_symbols() {
  // -dbgsym packages carry the debug info the packaged binaries are stripped of. Whether this
  // tree makes them is decided once, in cmake/ThrumPackaging.cmake (Release with -g: the
  // `package` preset), and cpack reads it from CPackConfig.cmake; the test reads the same line
  // rather than guessing from the binaries (a Debug/asan tree has debug info, and no -dbgsym).
  const bool debug_info =
      slurp(fs::path(THRUM_BUILD_DIR) / "CPackConfig.cmake")
          .find("set(CPACK_DEBIAN_DEBUGINFO_PACKAGE \"ON\")") != std::string::npos;
  std::set<std::string> want{"thrum", "thrum-sdk-dev", "thrum-transport-tailscale"};
  if (debug_info)
    want.insert({"thrum-dbgsym", "thrum-sdk-dev-dbgsym", "thrum-transport-tailscale-dbgsym"});
  EXPECT_EQ(names(), want);
  auto contents = [](const fs::path& d) {
    return run_process("/usr/bin/dpkg-deb", {"--contents", d.string()}, work_).out;
  };
  const std::string t = contents(deb("thrum"));
  for (const char* f :
       {"./usr/bin/thrum", "./usr/bin/thrum-daemon",
        "./usr/lib/thrum/plugins/libthrum_transport_local.so",
        "./usr/lib/thrum/plugins/libthrum_transport_network.so", "./usr/share/man/man1/thrum.1.gz",
        "./usr/share/man/man1/thrum-daemon.1.gz", "./usr/share/bash-completion/completions/thrum",
        "./usr/share/zsh/vendor-completions/_thrum", "./usr/lib/systemd/user/thrum@.service",
        "./usr/share/doc/thrum/copyright"})
    EXPECT_NE(t.find(f), std::string::npos) << f << " not in thrum:\n" << t;
  EXPECT_EQ(t.find("tailscale.so"), std::string::npos);
  EXPECT_NE(contents(deb("thrum-transport-tailscale")).find("libthrum_transport_tailscale.so"),
            std::string::npos);
  const std::string sdk = contents(deb("thrum-sdk-dev"));
  for (const char* f :
       {"./usr/include/thrum/sdk/transport.hpp", "ThrumSDKConfig.cmake",
        "./usr/lib/pkgconfig/thrum-sdk.pc", "./usr/bin/thrum-transport-conformance"})
    EXPECT_NE(sdk.find(f), std::string::npos) << f << " not in thrum-sdk-dev:\n" << sdk;
  // Stripped: the symbols are in the -dbgsym package, keyed by build id.
  auto file = run_process("/usr/bin/dpkg-deb",
                          {"-x", deb("thrum").string(), (work_ / "x").string()}, work_);
  auto info = run_process("/usr/bin/file", {(work_ / "x/usr/bin/thrum-daemon").string()}, work_);
  EXPECT_NE(info.out.find(", stripped"), std::string::npos) << info.out;
  if (debug_info) {
    // Each packaged ELF file's build id names its .debug file in the matching -dbgsym package:
    // that is how gdb and debuginfod find the symbols of an installed binary.
    for (const char* p : {"thrum", "thrum-transport-tailscale", "thrum-sdk-dev"}) {
      const fs::path into = work_ / "ids" / p;
      run_process("/usr/bin/dpkg-deb", {"-x", deb(p).string(), into.string()}, work_);
      const std::string dbg = contents(deb(std::string(p) + "-dbgsym"));
      int elves = 0;
      for (const auto& e : fs::recursive_directory_iterator(into)) {
        if (!e.is_regular_file() || e.is_symlink()) continue;
        auto notes = run_process("/usr/bin/readelf", {"-n", e.path().string()}, work_).out;
        std::smatch m;
        if (!std::regex_search(notes, m, std::regex(R"(Build ID: ([0-9a-f]{2})([0-9a-f]+))")))
          continue;
        ++elves;
        const std::string want_debug =
            "./usr/lib/debug/.build-id/" + m[1].str() + "/" + m[2].str() + ".debug";
        EXPECT_NE(dbg.find(want_debug), std::string::npos)
            << e.path() << ": " << want_debug << " not in " << p << "-dbgsym:\n"
            << dbg;
        auto kind = run_process("/usr/bin/file", {e.path().string()}, work_).out;
        EXPECT_NE(kind.find(", stripped"), std::string::npos) << kind;
      }
      EXPECT_GT(elves, 0) << p << " has no ELF file with a build id";
    }
  }
  auto license = slurp(work_ / "x/usr/share/doc/thrum/copyright");
  EXPECT_NE(license.find("License: Expat"), std::string::npos) << license;
}

void Packages::lintian_reports_no_errors() {
  for (const auto& d : debs_) {
    auto r = run_process("/usr/bin/lintian", {"--tag-display-limit", "0", d.string()}, work_, {},
                         std::nullopt, 300s);
    std::istringstream lines(r.out + r.err);
    std::string line, errors, warnings;
    while (std::getline(lines, line)) {
      if (line.rfind("E: ", 0) == 0) errors += line + "\n";
      if (line.rfind("W: ", 0) == 0) warnings += line + "\n";
    }
    EXPECT_EQ(errors, "") << d.filename();
    if (!warnings.empty()) std::cout << "[lintian warnings] " << d.filename() << "\n" << warnings;
  }
}

void Packages::installed_the_two_repo_demo_runs() {
  const fs::path root = work_ / "root";
  for (const char* d : {"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"})
    fs::create_directories(root / d);
  { std::ofstream(root / "var/lib/dpkg/status"); }
  std::vector<std::string> args{"--root=" + root.string(), "--log=/dev/null",
                                // The throwaway root has no libc6 & co: the installed binaries
                                // run against the host's, which is what satisfies them.
                                "--force-depends", "--force-not-root", "--no-triggers", "-i"};
  for (const auto& n : {"thrum", "thrum-transport-tailscale", "thrum-sdk-dev"})
    args.push_back(deb(n).string());
  auto inst = run_process("/usr/bin/dpkg", args, work_, {}, std::nullopt, 300s);
  ASSERT_EQ(inst.exit_code, 0) << inst.out << inst.err;
  auto listed = run_process("/usr/bin/dpkg", {"--root=" + root.string(), "-l"}, work_);
  EXPECT_TRUE(std::regex_search(listed.out, std::regex(R"(ii\s+thrum\s+0\.)"))) << listed.out;

  const fs::path thrum = root / "usr/bin/thrum";
  // Plugins found from the installed layout (<bin>/../lib/thrum/plugins), nothing from the build.
  auto plugins =
      run_process(thrum.string(), {"plugins", "list"}, work_, {{"THRUM_PLUGIN_PATH", ""}});
  EXPECT_EQ(plugins.exit_code, 0) << plugins.out << plugins.err;
  for (const char* id : {"local", "network", "tailscale"})
    EXPECT_TRUE(std::regex_search(plugins.out, std::regex(std::string(id) + R"(\s.*enabled)")))
        << id << ":\n"
        << plugins.out;
  EXPECT_NE(plugins.out.find((root / "usr/lib/thrum/plugins").string()), std::string::npos)
      << plugins.out;
  EXPECT_EQ(plugins.out.find(THRUM_BUILD_DIR), std::string::npos) << plugins.out;

  auto demo = run_process("/bin/bash", {THRUM_SOURCE_DIR "/scripts/demo-run.sh", thrum.string()},
                          work_, {{"THRUM_PLUGIN_PATH", ""}}, std::nullopt, 180s);
  EXPECT_EQ(demo.exit_code, 0) << demo.out << demo.err;
  EXPECT_NE(demo.out.find("Reviewed: approve, one nit in token refresh"), std::string::npos)
      << demo.out;
  EXPECT_NE(demo.out.find("Demo finished"), std::string::npos) << demo.out << demo.err;

  auto unit = slurp(root / "usr/lib/systemd/user/thrum@.service");
  EXPECT_NE(unit.find("Type=notify"), std::string::npos);
  EXPECT_NE(unit.find("ExecStart=/usr/bin/thrum --repo %f daemon run"), std::string::npos);
}

TEST_F(Packages, BuiltLintedInstalledAndTheDemoRunsFromTheInstall) {
  {
    SCOPED_TRACE("contents");
    three_packages_with_debug_symbols();
  }
  {
    SCOPED_TRACE("lintian");
    lintian_reports_no_errors();
  }
  {
    SCOPED_TRACE("dpkg --root and the demo");
    installed_the_two_repo_demo_runs();
  }
}

}  // namespace
}  // namespace thrum::test
