#include "common/log.h"

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "common/time.h"

namespace fg {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};

// The structured fields of the line being logged on this thread (LogEvent);
// spdlog's synchronous sinks format in the caller's thread.
struct PendingEvent {
  std::string_view event;
  const LogFields* fields = nullptr;
};
thread_local PendingEvent t_event;

// Wraps the pattern formatter: the payload (the formatted message) is
// escaped before the pattern adds time, level and the newline. Lines without
// anything to escape cost one scan.
class EscapingFormatter final : public spdlog::formatter {
 public:
  explicit EscapingFormatter(std::unique_ptr<spdlog::formatter> inner) : inner_(std::move(inner)) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string_view payload(msg.payload.data(), msg.payload.size());
    // A LogEvent line escaped its values itself (AppendTextValue).
    if (t_event.fields != nullptr || IsPrintable(payload)) {
      inner_->format(msg, dest);
      return;
    }
    std::string escaped = Printable(payload);
    spdlog::details::log_msg copy = msg;
    copy.payload = spdlog::string_view_t(escaped.data(), escaped.size());
    inner_->format(copy, dest);
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<EscapingFormatter>(inner_->clone());
  }

 private:
  std::unique_ptr<spdlog::formatter> inner_;
};

// One JSON object per line. nlohmann's dump escapes every control character
// (and, with ensure_ascii, everything outside ASCII), so no value can end
// the line or forge another one.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::ordered_json line;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count();
    line["ts"] = FormatRfc3339(static_cast<UnixMillis>(ms));
    line["level"] = std::string(LogLevelName(msg.level));
    if (t_event.fields != nullptr) {
      line["event"] = std::string(t_event.event);
      for (const auto& [key, value] : *t_event.fields) line[std::string(key)] = value;
    } else {
      line["event"] = "log";
      line["msg"] = std::string(msg.payload.data(), msg.payload.size());
    }
    std::string text = line.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
    text.push_back('\n');
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }
};

void AppendTextValue(std::string* out, std::string_view value) {
  std::string shown = Printable(value);
  if (shown.empty() || shown.find_first_of(" \"=") != std::string::npos) {
    out->push_back('"');
    for (char c : shown) {  // Printable() already doubled every backslash
      if (c == '"') out->push_back('\\');
      out->push_back(c);
    }
    out->push_back('"');
  } else {
    out->append(shown);
  }
}

}  // namespace

void EscapeLogMessages(spdlog::logger& logger) {
  logger.set_formatter(
      std::make_unique<EscapingFormatter>(std::make_unique<spdlog::pattern_formatter>()));
}

std::string_view LogLevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    default: return "info";
  }
}

Status ConfigureLogging(std::string_view format, std::string_view level) {
  spdlog::level::level_enum lvl;
  if (level == "debug") {
    lvl = spdlog::level::debug;
  } else if (level == "info") {
    lvl = spdlog::level::info;
  } else if (level == "warn") {
    lvl = spdlog::level::warn;
  } else if (level == "error") {
    lvl = spdlog::level::err;
  } else {
    return Status::InvalidArgument("--log-level must be debug, info, warn or error, not '" + Printable(level, 32) +
                                   "'");
  }
  LogFormat fmt;
  if (format == "text") {
    fmt = LogFormat::kText;
  } else if (format == "json") {
    fmt = LogFormat::kJson;
  } else {
    return Status::InvalidArgument("--log-format must be text or json, not '" + Printable(format, 32) + "'");
  }
  auto logger = spdlog::default_logger();
  if (fmt == LogFormat::kJson) {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    EscapeLogMessages(*logger);
  }
  logger->set_level(lvl);
  g_format.store(fmt, std::memory_order_relaxed);
  return Status::Ok();
}

LogFormat CurrentLogFormat() { return g_format.load(std::memory_order_relaxed); }

void LogEvent(spdlog::level::level_enum level, std::string_view event, const LogFields& fields) {
  auto* logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  std::string text(event);
  for (const auto& [key, value] : fields) {
    text.push_back(' ');
    text.append(key);
    text.push_back('=');
    AppendTextValue(&text, value);
  }
  t_event = PendingEvent{event, &fields};
  logger->log(level, "{}", text);
  t_event = PendingEvent{};
}

}  // namespace fg
