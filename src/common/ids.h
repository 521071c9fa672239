#pragma once

// Identifiers at the door, and text on the way out (docs/identifiers.md).
//
// Every identifier that enters through the network or a file (device ids,
// certificate CNs, token references, session ids, endpoints, reasons, ...)
// is checked here against the character set and length of its kind before
// anything acts on it. A refusal names the field and the rule, never the
// value: the value is untrusted text (and may be a subscriber identifier).
//
// Everything printed (CLI output, serve's log, syslog, audit text) goes
// through Printable(), so that a value that slipped past a door, or was
// stored before the doors existed, cannot forge a line or steer a terminal.
//
// Thread-safe: pure functions; CountBadIdentifier uses the global metrics.

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace fg {

enum class IdKind {
  // 1..64 of [A-Za-z0-9._-], not starting with '.' or '-' (as ValidateDeviceId).
  kDeviceId,
  // Opaque machine identifiers: session ids, SeGW ids, token references,
  // serials, fingerprints, alert ids. [A-Za-z0-9._:/@+=~-], 1..128.
  kToken,
  // An authentication endpoint: host, host:port, [v6]:port or a URL.
  // [A-Za-z0-9._:/[]-], 1..255.
  kEndpoint,
  // An IP address as text: [0-9A-Fa-f.:], 1..64 (parsed where it is used).
  kAddress,
  // Free text written by people: reasons, comments, owners, labels, merchant
  // and sender names. Valid UTF-8 without control characters (C0, DEL, C1)
  // or bidirectional overrides; 1..256 bytes unless the field says otherwise.
  kText,
};

// "device id", "token", ... for messages.
std::string_view IdKindName(IdKind kind);
// The longest value `kind` accepts by default.
size_t IdKindMaxBytes(IdKind kind);

// True when `value` is a non-empty `kind` of at most `max_bytes` bytes
// (0 = the kind's default). Cheap enough for the event decoder's hot path.
bool IsValidIdentifier(IdKind kind, std::string_view value, size_t max_bytes = 0);

// InvalidArgument "field 'F': not a <kind> (<rule>)" or OK. The value is
// never part of the message.
Status CheckIdentifier(IdKind kind, std::string_view field, std::string_view value,
                       size_t max_bytes = 0);
// The same, but an empty value is accepted (optional fields).
Status CheckOptionalIdentifier(IdKind kind, std::string_view field, std::string_view value,
                               size_t max_bytes = 0);

// Counts a refused identifier in femtoguard_bad_identifier_total{door,field}.
// `door` and `field` must be constants of the caller, never input.
void CountBadIdentifier(std::string_view door, std::string_view field);

// `s` made safe to print on one line: backslash doubled; \n \r \t as those
// two-character escapes; other C0 controls, DEL and bytes that are not
// UTF-8 as \xNN; C1 controls and bidirectional overrides as \uNNNN. Other
// UTF-8 passes unchanged. Longer than `max_bytes` (0 = no limit): cut at a
// character boundary and "..." appended.
std::string Printable(std::string_view s, size_t max_bytes = 0);
void AppendPrintable(std::string* out, std::string_view s, size_t max_bytes = 0);
// True when Printable(s) == s (nothing to escape).
bool IsPrintable(std::string_view s);

}  // namespace fg
