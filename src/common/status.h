#pragma once

// Status and Result<T>: the one error type of femtoguard (leveldb util/status.h
// in spirit). Success carries no message and costs one enum compare. Every
// returned Status/Result must be checked.

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace fg {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input from outside: malformed, out of range
  kNotFound,            // the named thing does not exist
  kAlreadyExists,       // uniqueness would be broken (a key bound twice, a duplicate id)
  kFailedPrecondition,  // the state forbids it (inactive device, bad lifecycle transition)
  kPermissionDenied,    // not allowed for this caller
  kUnavailable,         // a dependency could not be reached; may succeed later
  kInternal,            // a broken invariant or library failure
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {StatusCode::kAlreadyExists, std::move(msg)}; }
  static Status FailedPrecondition(std::string msg) {
    return {StatusCode::kFailedPrecondition, std::move(msg)};
  }
  static Status PermissionDenied(std::string msg) {
    return {StatusCode::kPermissionDenied, std::move(msg)};
  }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsAlreadyExists() const { return code_ == StatusCode::kAlreadyExists; }

 private:
  Status(StatusCode code, std::string msg) : code_(code), message_(std::move(msg)) {}

  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "Result constructed from an OK status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace fg

// Propagates a non-OK Status from an expression returning Status.
#define FG_RETURN_IF_ERROR(expr)         \
  do {                                   \
    ::fg::Status fg_status_ = (expr);    \
    if (!fg_status_.ok()) return fg_status_; \
  } while (0)

#define FG_CONCAT_INNER(a, b) a##b
#define FG_CONCAT(a, b) FG_CONCAT_INNER(a, b)
// Declares `lhs` from a Result<T> expression or returns its Status.
#define FG_ASSIGN_OR_RETURN(lhs, expr)                          \
  auto FG_CONCAT(fg_result_, __LINE__) = (expr);                \
  if (!FG_CONCAT(fg_result_, __LINE__).ok())                    \
    return FG_CONCAT(fg_result_, __LINE__).status();            \
  lhs = std::move(FG_CONCAT(fg_result_, __LINE__)).value()
