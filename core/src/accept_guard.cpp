#include "accept_guard.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/error.hpp>
#include <cerrno>

#include <spdlog/spdlog.h>

#include "thrum/core/incidents.hpp"

namespace thrum::core {

namespace {

int open_reserve() {
  return ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

bool out_of_descriptors(const boost::system::error_code& ec) {
  return ec == boost::asio::error::no_descriptors ||  // EMFILE
         ec == boost::system::errc::too_many_files_open_in_system ||
         ec == boost::asio::error::no_buffer_space || ec == boost::asio::error::no_memory;
}

}  // namespace

AcceptGuard::AcceptGuard(std::string listener)
    : listener_(std::move(listener)), reserve_fd_(open_reserve()) {}

AcceptGuard::~AcceptGuard() {
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
}

void AcceptGuard::shed_one(int listen_fd) {
  // With the reserve given back, one descriptor is free: take the oldest waiting connection
  // and close it at once (the client sees a hang-up instead of waiting for ever).
  if (reserve_fd_ >= 0) {
    ::close(reserve_fd_);
    reserve_fd_ = -1;
  }
  pollfd p{listen_fd, POLLIN, 0};
  if (listen_fd >= 0 && ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  reserve_fd_ = open_reserve();
}

std::chrono::milliseconds AcceptGuard::on_error(const boost::system::error_code& ec,
                                                int listen_fd) {
  count_incident(Incident::kAcceptError);
  const bool exhausted = out_of_descriptors(ec);
  if (exhausted) shed_one(listen_fd);
  backoff_ = backoff_.count() == 0 ? kFirstPause : std::min(backoff_ * 2, kMaxPause);
  if (auto n = error_log_.admit()) {
    spdlog::warn("{} accept failed error=\"{}\" occurrences={}; pausing accepts for {} ms{}",
                 listener_, ec.message(), n, backoff_.count(),
                 exhausted ? " (out of file descriptors: raise the limit or close clients)" : "");
  }
  return backoff_;
}

void AcceptGuard::on_refused(std::size_t cap) {
  count_incident(Incident::kConnectionRefused);
  if (auto n = refused_log_.admit()) {
    spdlog::warn(
        "{} connection refused: {} connections are open (daemon.max_connections) "
        "occurrences={}",
        listener_, cap, n);
  }
}

}  // namespace thrum::core
