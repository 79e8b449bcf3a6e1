#pragma once
// A minimal blocking Redis (RESP2) client for the anchors benchmark: commands as arrays of bulk
// strings, replies parsed into a small tree. Loopback only; errors throw.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace thrum::bench {

struct RespValue {
  char type = '+';  ///< + - : $ * (a nil bulk or array has is_nil set)
  bool is_nil = false;
  std::string str;  ///< simple string, error, bulk string or integer text
  std::vector<RespValue> items;
};

class RespClient {
 public:
  explicit RespClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      throw std::runtime_error("cannot connect to redis on port " + std::to_string(port));
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~RespClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RespClient(const RespClient&) = delete;
  RespClient& operator=(const RespClient&) = delete;

  void send(const std::vector<std::string>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    size_t off = 0;
    while (off < out.size()) {
      ssize_t w = ::write(fd_, out.data() + off, out.size() - off);
      if (w <= 0) throw std::runtime_error("redis write failed");
      off += static_cast<size_t>(w);
    }
  }
  RespValue read() {
    RespValue v;
    std::string line = read_line();
    if (line.empty()) throw std::runtime_error("redis: empty reply line");
    v.type = line[0];
    const std::string rest = line.substr(1);
    switch (v.type) {
      case '+':
      case ':':
        v.str = rest;
        break;
      case '-':
        throw std::runtime_error("redis error: " + rest);
      case '$': {
        const long n = std::atol(rest.c_str());
        if (n < 0) {
          v.is_nil = true;
          break;
        }
        v.str = read_exact(static_cast<size_t>(n) + 2);
        v.str.resize(static_cast<size_t>(n));
        break;
      }
      case '*': {
        const long n = std::atol(rest.c_str());
        if (n < 0) {
          v.is_nil = true;
          break;
        }
        for (long i = 0; i < n; ++i) v.items.push_back(read());
        break;
      }
      default:
        throw std::runtime_error("redis: unexpected reply type " + std::string(1, v.type));
    }
    return v;
  }
  RespValue call(const std::vector<std::string>& args) {
    send(args);
    return read();
  }

 private:
  bool fill() {
    char buf[16384];
    ssize_t r = ::read(fd_, buf, sizeof buf);
    if (r <= 0) return false;
    in_.append(buf, static_cast<size_t>(r));
    return true;
  }
  std::string read_line() {
    for (;;) {
      auto p = in_.find("\r\n", pos_);
      if (p != std::string::npos) {
        std::string line = in_.substr(pos_, p - pos_);
        pos_ = p + 2;
        compact();
        return line;
      }
      if (!fill()) throw std::runtime_error("redis connection closed");
    }
  }
  std::string read_exact(size_t n) {
    while (in_.size() - pos_ < n)
      if (!fill()) throw std::runtime_error("redis connection closed");
    std::string out = in_.substr(pos_, n);
    pos_ += n;
    compact();
    return out;
  }
  void compact() {
    if (pos_ > 65536 || pos_ == in_.size()) {
      in_.erase(0, pos_);
      pos_ = 0;
    }
  }

  int fd_ = -1;
  std::string in_;
  size_t pos_ = 0;
};

}  // namespace thrum::bench
