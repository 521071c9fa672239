#include "segw/vici_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace fg::segw::vici {
namespace {

using Clock = std::chrono::steady_clock;

int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Writes all of `bytes` to the non-blocking `fd` before `deadline`.
Status WriteAll(int fd, std::string_view bytes, Clock::time_point deadline) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int left = MillisLeft(deadline);
      if (left == 0) return Status::Unavailable("vici: timed out writing a request");
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, left) < 0 && errno != EINTR) return Status::Unavailable(Errno("vici: poll"));
      continue;
    }
    return Status::Unavailable(Errno("vici: send"));
  }
  return Status::Ok();
}

std::string_view TypeName(PacketType t) {
  switch (t) {
    case PacketType::kCmdRequest: return "CMD_REQUEST";
    case PacketType::kCmdResponse: return "CMD_RESPONSE";
    case PacketType::kCmdUnknown: return "CMD_UNKNOWN";
    case PacketType::kEventRegister: return "EVENT_REGISTER";
    case PacketType::kEventUnregister: return "EVENT_UNREGISTER";
    case PacketType::kEventConfirm: return "EVENT_CONFIRM";
    case PacketType::kEventUnknown: return "EVENT_UNKNOWN";
    case PacketType::kEvent: return "EVENT";
  }
  return "?";
}

}  // namespace

Result<std::unique_ptr<Client>> Client::Connect(const std::string& path, int timeout_ms, EventHandler on_event,
                                                CloseHandler on_close, Limits limits) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return Status::InvalidArgument("vici: socket path empty or longer than " +
                                   std::to_string(sizeof addr.sun_path - 1) + " bytes: " + path);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::Unavailable(Errno("vici: socket"));
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      Status s = Status::Unavailable(Errno(("vici: connect " + path).c_str()));
      close(fd);
      return s;
    }
    pollfd p{fd, POLLOUT, 0};
    int rc = poll(&p, 1, MillisLeft(deadline));
    int err = 0;
    socklen_t len = sizeof err;
    if (rc <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      close(fd);
      return Status::Unavailable("vici: connect " + path + ": " + (rc <= 0 ? "timed out" : std::strerror(err)));
    }
  }
  std::unique_ptr<Client> c(new Client(fd, std::move(on_event), std::move(on_close), limits));
  c->reader_ = std::thread([raw = c.get()] { raw->ReadLoop(); });
  return c;
}

Client::Client(int fd, EventHandler on_event, CloseHandler on_close, Limits limits)
    : limits_(limits), on_event_(std::move(on_event)), on_close_(std::move(on_close)), fd_(fd) {}

Client::~Client() { Close(); }

bool Client::open() const {
  std::lock_guard lock(mutex_);
  return !closed_;
}

void Client::Fail(const Status& why) {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    close_reason_ = why;
  }
  cv_.notify_all();
  shutdown(fd_, SHUT_RDWR);  // wakes the reader
}

void Client::Close() {
  std::lock_guard lock(close_mutex_);
  if (joined_) return;
  Fail(Status::Unavailable("vici: connection closed"));
  if (reader_.joinable()) reader_.join();
  close(fd_);
  joined_ = true;
}

void Client::ReadLoop() {
  std::string buf;
  char chunk[16384];
  Status end = Status::Unavailable("vici: charon closed the connection");
  for (;;) {
    // Hand out every complete packet in the buffer.
    size_t off = 0;
    bool bad = false;
    while (buf.size() - off >= 4) {
      auto len = DecodeLength(reinterpret_cast<const unsigned char*>(buf.data() + off), limits_);
      if (!len.ok()) {
        end = len.status();
        bad = true;
        break;
      }
      if (buf.size() - off - 4 < *len) break;
      auto packet = DecodePacket(std::string_view(buf).substr(off + 4, *len), limits_);
      off += 4 + *len;
      if (!packet.ok()) {
        end = packet.status();
        bad = true;
        break;
      }
      if (packet->type == PacketType::kEvent) {
        bool streamed = false;
        {
          std::lock_guard lock(mutex_);
          if (!stream_event_.empty() && packet->name == stream_event_) {
            stream_.push_back(std::move(packet->message));
            streamed = true;
          }
        }
        if (!streamed && on_event_) on_event_(packet->name, packet->message);
      } else if (packet->type == PacketType::kCmdRequest || packet->type == PacketType::kEventRegister ||
                 packet->type == PacketType::kEventUnregister) {
        end = Status::InvalidArgument("vici: server sent a client packet (" + std::string(TypeName(packet->type)) +
                                      ")");
        bad = true;
        break;
      } else {
        {
          std::lock_guard lock(mutex_);
          replies_.push_back(std::move(*packet));
        }
        cv_.notify_all();
      }
    }
    if (bad) break;
    buf.erase(0, off);

    pollfd p{fd_, POLLIN, 0};
    int rc = poll(&p, 1, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      end = Status::Unavailable(Errno("vici: poll"));
      break;
    }
    ssize_t n = read(fd_, chunk, sizeof chunk);
    if (n > 0) {
      buf.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n < 0) end = Status::Unavailable(Errno("vici: read"));
    break;
  }
  Status why;
  {
    std::lock_guard lock(mutex_);
    why = closed_ ? close_reason_ : end;
  }
  Fail(why);
  if (on_close_) on_close_(why);
}

Result<Packet> Client::Exchange(const Packet& packet, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  FG_ASSIGN_OR_RETURN(std::string bytes, EncodePacket(packet, limits_));
  {
    std::lock_guard lock(mutex_);
    if (closed_) return Status::Unavailable(close_reason_.message());
    replies_.clear();
  }
  if (Status s = WriteAll(fd_, bytes, deadline); !s.ok()) {
    Fail(s);
    return s;
  }
  std::unique_lock lock(mutex_);
  cv_.wait_until(lock, deadline, [&] { return closed_ || !replies_.empty(); });
  if (!replies_.empty()) {
    Packet reply = std::move(replies_.front());
    replies_.pop_front();
    return reply;
  }
  if (closed_) return Status::Unavailable(close_reason_.message());
  lock.unlock();
  // A late answer would be read as the next command's: give the connection up.
  Status timeout = Status::Unavailable("vici: no answer to " + std::string(TypeName(packet.type)) + " '" +
                                       packet.name + "' within " + std::to_string(timeout_ms) + " ms");
  Fail(timeout);
  return timeout;
}

Result<Section> Client::Request(std::string_view command, const Section& args, int timeout_ms) {
  std::lock_guard command_lock(command_mutex_);
  Packet p{PacketType::kCmdRequest, std::string(command), args};
  FG_ASSIGN_OR_RETURN(Packet reply, Exchange(p, timeout_ms));
  if (reply.type == PacketType::kCmdResponse) return std::move(reply.message);
  if (reply.type == PacketType::kCmdUnknown) {
    return Status::NotFound("vici: charon does not know the command '" + std::string(command) + "'");
  }
  Status s = Status::Unavailable("vici: unexpected " + std::string(TypeName(reply.type)) + " in answer to '" +
                                 std::string(command) + "'");
  Fail(s);
  return s;
}

Status Client::Register(std::string_view event, int timeout_ms) {
  std::lock_guard command_lock(command_mutex_);
  FG_ASSIGN_OR_RETURN(Packet reply, Exchange({PacketType::kEventRegister, std::string(event), {}}, timeout_ms));
  if (reply.type == PacketType::kEventConfirm) return Status::Ok();
  if (reply.type == PacketType::kEventUnknown) {
    return Status::NotFound("vici: charon has no event '" + std::string(event) + "'");
  }
  Status s = Status::Unavailable("vici: unexpected " + std::string(TypeName(reply.type)) +
                                 " in answer to registering '" + std::string(event) + "'");
  Fail(s);
  return s;
}

Status Client::Unregister(std::string_view event, int timeout_ms) {
  std::lock_guard command_lock(command_mutex_);
  FG_ASSIGN_OR_RETURN(Packet reply, Exchange({PacketType::kEventUnregister, std::string(event), {}}, timeout_ms));
  if (reply.type == PacketType::kEventConfirm) return Status::Ok();
  if (reply.type == PacketType::kEventUnknown) {
    return Status::NotFound("vici: charon has no event '" + std::string(event) + "'");
  }
  Status s = Status::Unavailable("vici: unexpected " + std::string(TypeName(reply.type)) +
                                 " in answer to unregistering '" + std::string(event) + "'");
  Fail(s);
  return s;
}

Result<Client::Streamed> Client::StreamRequest(std::string_view command, const Section& args,
                                               std::string_view stream_event, int timeout_ms) {
  std::lock_guard command_lock(command_mutex_);
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  {
    std::lock_guard lock(mutex_);
    stream_event_ = std::string(stream_event);
    stream_.clear();
  }
  auto stop_gathering = [&] {
    std::lock_guard lock(mutex_);
    stream_event_.clear();
    return std::move(stream_);
  };
  auto reg = Exchange({PacketType::kEventRegister, std::string(stream_event), {}}, MillisLeft(deadline));
  if (!reg.ok() || reg->type != PacketType::kEventConfirm) {
    stop_gathering();
    if (!reg.ok()) return reg.status();
    Status s = Status::Unavailable("vici: charon refused the stream event '" + std::string(stream_event) + "'");
    if (reg->type != PacketType::kEventUnknown) Fail(s);
    return s;
  }
  auto reply = Exchange({PacketType::kCmdRequest, std::string(command), args}, MillisLeft(deadline));
  Streamed out;
  out.events = stop_gathering();
  if (!reply.ok()) return reply.status();
  if (reply->type == PacketType::kCmdUnknown) {
    (void)Exchange({PacketType::kEventUnregister, std::string(stream_event), {}}, MillisLeft(deadline));
    return Status::NotFound("vici: charon does not know the command '" + std::string(command) + "'");
  }
  if (reply->type != PacketType::kCmdResponse) {
    Status s = Status::Unavailable("vici: unexpected " + std::string(TypeName(reply->type)) + " in answer to '" +
                                   std::string(command) + "'");
    Fail(s);
    return s;
  }
  out.response = std::move(reply->message);
  auto unreg = Exchange({PacketType::kEventUnregister, std::string(stream_event), {}}, MillisLeft(deadline));
  if (!unreg.ok()) return unreg.status();
  if (unreg->type != PacketType::kEventConfirm) {
    Status s = Status::Unavailable("vici: charon refused to unregister '" + std::string(stream_event) + "'");
    Fail(s);
    return s;
  }
  return out;
}

}  // namespace fg::segw::vici
