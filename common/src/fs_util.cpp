#include "thrum/common/fs_util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "thrum/common/ids.hpp"

namespace thrum::core {
namespace fs = std::filesystem;

namespace {

[[noreturn]] void throw_errno(const std::string& what, const fs::path& p) {
  throw std::system_error(errno, std::generic_category(), what + " " + p.string());
}

void write_all(int fd, std::string_view data, const fs::path& p) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write", p);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("open dir", dir);
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) {
    errno = saved;
    throw_errno("fsync dir", dir);
  }
}

void atomic_write_file(const fs::path& path, std::string_view data, mode_t mode,
                       Durability durability) {
  const bool durable = durability == Durability::kDurable;
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) throw_errno("create temp file for", path);
  fs::path tmp = tmpl;
  try {
    if (::fchmod(fd, mode) != 0) throw_errno("chmod", tmp);
    write_all(fd, data, tmp);
    if (durable && ::fsync(fd) != 0) throw_errno("fsync", tmp);
    if (::close(fd) != 0) {
      fd = -1;
      throw_errno("close", tmp);
    }
    fd = -1;
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("rename onto", path);
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (durable) fsync_dir(dir);
}

std::optional<std::string> read_file(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("open", path);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      errno = saved;
      throw_errno("read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::optional<std::string> read_file_or_nothing(const fs::path& path) {
  try {
    return read_file(path);
  } catch (const std::system_error&) {
    return std::nullopt;
  }
}

void ensure_dir(const fs::path& dir, mode_t mode) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::system_error(ec, "create directory " + dir.string());
  struct stat link {};
  if (::lstat(dir.c_str(), &link) != 0) throw_errno("stat", dir);
  if (S_ISLNK(link.st_mode)) {
    // Never chmod through a link (its target may be anything, e.g. a shared directory).
    // A link is accepted only when its target already is a private directory of ours.
    struct stat target {};
    if (::stat(dir.c_str(), &target) != 0) throw_errno("stat", dir);
    if (!S_ISDIR(target.st_mode) || target.st_uid != ::geteuid() || (target.st_mode & 077) != 0) {
      std::error_code rec;
      const fs::path to = fs::read_symlink(dir, rec);
      throw std::runtime_error(
          dir.string() + " is a symlink to " + (rec ? std::string("?") : to.string()) +
          ", which is not a directory owned by this user with no group/other access; Thrum "
          "does not change a link's target: make the target private (chmod 700 it) or replace "
          "the link with a directory");
    }
    return;
  }
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_errno("open dir", dir);
  const int rc = ::fchmod(fd, mode);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) {
    errno = saved;
    throw_errno("chmod", dir);
  }
}

bool tighten_mode(const fs::path& file, mode_t mode) {
  int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;  // absent, or a symlink: left alone
  struct stat st {};
  bool changed = false;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) != mode)
    changed = ::fchmod(fd, mode) == 0;
  ::close(fd);
  return changed;
}

fs::path move_aside_corrupt(const fs::path& path) {
  fs::path target = path;
  target += ".corrupt-" + compact_utc_timestamp();
  // Two corruptions within one second must not overwrite each other.
  for (int i = 1; fs::exists(target); ++i) {
    target = path;
    target += ".corrupt-" + compact_utc_timestamp() + "-" + std::to_string(i);
  }
  if (::rename(path.c_str(), target.c_str()) != 0) throw_errno("move aside", path);
  // The copy may hold tokens: owner-only, whatever mode the original had. O_NOFOLLOW: if the
  // name was a symlink, rename moved the link itself and its target is left alone.
  int fd = ::open(target.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd >= 0) {
    (void)::fchmod(fd, 0600);
    ::close(fd);
  }
  fsync_dir(path.parent_path());
  return target;
}

bool copy_file_once(const fs::path& from, const fs::path& to) {
  if (fs::exists(to)) return false;
  auto content = read_file(from);
  if (!content) return false;
  int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    throw_errno("create", to);
  }
  try {
    write_all(fd, *content, to);
    if (::fsync(fd) != 0) throw_errno("fsync", to);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  fsync_dir(to.parent_path());
  return true;
}

}  // namespace thrum::core
