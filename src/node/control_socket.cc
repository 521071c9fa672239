#include "node/control_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "node/node.h"

namespace fg {
namespace {

sockaddr_un ControlAddress(const std::filesystem::path& path, bool* ok) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string p = path.string();
  *ok = p.size() < sizeof(addr.sun_path);
  if (*ok) std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  return addr;
}

}  // namespace

Result<std::unique_ptr<ControlSocket>> ControlSocket::Start(const DataDir& dir, std::function<Status()> sync) {
  std::unique_ptr<ControlSocket> self(new ControlSocket(dir, std::move(sync)));
  std::error_code ec;
  std::filesystem::create_directories(dir.RunDir(), ec);
  std::filesystem::permissions(dir.RunDir(), std::filesystem::perms::owner_all, ec);
  bool ok;
  sockaddr_un addr = ControlAddress(dir.ControlSocketPath(), &ok);
  if (!ok) return Status::InvalidArgument("data dir path too long for a unix socket");
  ::unlink(addr.sun_path);
  self->fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (self->fd_ < 0 || ::bind(self->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(self->fd_, 16) != 0) {
    return Status::Internal(std::string("control socket: ") + std::strerror(errno));
  }
  ::chmod(addr.sun_path, 0600);
  if (::pipe2(self->wake_pipe_, O_CLOEXEC) != 0) return Status::Internal("pipe");
  ControlSocket* raw = self.get();
  self->thread_ = std::thread([raw] { raw->Serve(); });
  return self;
}

ControlSocket::~ControlSocket() { Stop(); }

void ControlSocket::Stop() {
  if (wake_pipe_[1] >= 0) (void)!::write(wake_pipe_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(dir_.ControlSocketPath().c_str());
  }
  for (int& fd : wake_pipe_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

// Line protocol: "sync\n" -> "ok\n" | "error <message>\n".
void ControlSocket::Serve() {
  for (;;) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[64];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    std::string reply = "error unknown command\n";
    if (n > 0 && std::string_view(buf, static_cast<size_t>(n)).substr(0, 4) == "sync") {
      Status s = sync_();
      reply = s.ok() ? "ok\n" : "error " + s.ToString() + "\n";
    }
    (void)!::write(fd, reply.data(), reply.size());
    ::close(fd);
  }
}

Status NotifyServe(const DataDir& dir, int timeout_ms) {
  bool ok;
  sockaddr_un addr = ControlAddress(dir.ControlSocketPath(), &ok);
  if (!ok || !std::filesystem::exists(dir.ControlSocketPath())) return Status::Ok();
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal("socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return Status::Ok();  // stale socket file: no server running
  }
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)!::write(fd, "sync\n", 5);
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return Status::Unavailable("serve did not confirm the change in time");
  std::string reply(buf, static_cast<size_t>(n));
  if (reply.rfind("ok", 0) == 0) return Status::Ok();
  return Status::Internal("serve: " + reply);
}

}  // namespace fg
