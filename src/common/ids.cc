#include "common/ids.h"

#include <array>
#include <cstdint>

#include "common/metrics.h"

namespace fg {
namespace {

// One bit per kind in a byte table: which ASCII bytes each machine kind takes.
enum : uint8_t { kDev = 1, kTok = 2, kEnd = 4, kAddr = 8 };

constexpr std::array<uint8_t, 256> MakeTable() {
  std::array<uint8_t, 256> t{};
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = kDev | kTok | kEnd;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = kDev | kTok | kEnd;
  for (int c = '0'; c <= '9'; ++c) t[c] = kDev | kTok | kEnd | kAddr;
  for (int c = 'A'; c <= 'F'; ++c) t[c] |= kAddr;
  for (int c = 'a'; c <= 'f'; ++c) t[c] |= kAddr;
  for (char c : {'.', '-'}) t[static_cast<unsigned char>(c)] |= kDev | kTok | kEnd;
  t['_'] |= kDev | kTok | kEnd;
  t['.'] |= kAddr;
  t[':'] |= kTok | kEnd | kAddr;
  for (char c : {'/', '@', '+', '=', '~'}) t[static_cast<unsigned char>(c)] |= kTok;
  t['/'] |= kEnd;  // endpoints may be written as URLs
  t['['] |= kEnd;
  t[']'] |= kEnd;
  return t;
}
constexpr std::array<uint8_t, 256> kTable = MakeTable();

// Decodes one UTF-8 character at s[i]; returns its length, 0 when the bytes
// there are not well-formed UTF-8 (overlong forms and surrogates included).
size_t Utf8At(std::string_view s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t n;
  uint32_t v;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    v = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    v = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b(k) & 0x3F);
  }
  if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
      (v >= 0xD800 && v <= 0xDFFF)) {
    return 0;
  }
  *cp = v;
  return n;
}

// Code points that steer a terminal or the reading order: C0, DEL, C1, and
// the bidirectional embeddings, overrides and isolates ("Trojan Source").
bool IsControl(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

bool IsText(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {  // the common case: printable ASCII
      ++i;
      continue;
    }
    uint32_t cp;
    size_t n = Utf8At(s, i, &cp);
    if (n == 0 || IsControl(cp)) return false;
    i += n;
  }
  return true;
}

bool AllIn(std::string_view s, uint8_t bit) {
  for (char c : s) {
    if ((kTable[static_cast<unsigned char>(c)] & bit) == 0) return false;
  }
  return true;
}

std::string_view RuleOf(IdKind kind) {
  switch (kind) {
    case IdKind::kDeviceId:
      return "A-Z a-z 0-9 . _ -, not starting with . or -";
    case IdKind::kToken:
      return "A-Z a-z 0-9 . _ : / @ + = ~ -";
    case IdKind::kEndpoint:
      return "A-Z a-z 0-9 . _ : / [ ] -";
    case IdKind::kAddress:
      return "an IP address: 0-9 a-f A-F . :";
    case IdKind::kText:
      return "UTF-8 without control characters";
  }
  return "";
}

}  // namespace

std::string_view IdKindName(IdKind kind) {
  switch (kind) {
    case IdKind::kDeviceId:
      return "device id";
    case IdKind::kToken:
      return "identifier";
    case IdKind::kEndpoint:
      return "endpoint";
    case IdKind::kAddress:
      return "IP address";
    case IdKind::kText:
      return "text value";
  }
  return "identifier";
}

size_t IdKindMaxBytes(IdKind kind) {
  switch (kind) {
    case IdKind::kDeviceId:
      return 64;
    case IdKind::kToken:
      return 128;
    case IdKind::kEndpoint:
      return 255;
    case IdKind::kAddress:
      return 64;
    case IdKind::kText:
      return 256;
  }
  return 0;
}

bool IsValidIdentifier(IdKind kind, std::string_view value, size_t max_bytes) {
  if (max_bytes == 0) max_bytes = IdKindMaxBytes(kind);
  if (value.empty() || value.size() > max_bytes) return false;
  switch (kind) {
    case IdKind::kDeviceId:
      return value[0] != '.' && value[0] != '-' && AllIn(value, kDev);
    case IdKind::kToken:
      return AllIn(value, kTok);
    case IdKind::kEndpoint:
      return AllIn(value, kEnd);
    case IdKind::kAddress:
      return AllIn(value, kAddr);
    case IdKind::kText:
      return IsText(value);
  }
  return false;
}

Status CheckIdentifier(IdKind kind, std::string_view field, std::string_view value,
                       size_t max_bytes) {
  if (IsValidIdentifier(kind, value, max_bytes)) return Status::Ok();
  if (max_bytes == 0) max_bytes = IdKindMaxBytes(kind);
  std::string why;
  if (value.empty()) {
    why = "empty";
  } else if (value.size() > max_bytes) {
    why = "longer than " + std::to_string(max_bytes) + " bytes";
  } else {
    why = "not a valid " + std::string(IdKindName(kind)) + " (" + std::string(RuleOf(kind)) + ")";
  }
  return Status::InvalidArgument("field '" + std::string(field) + "': " + why);
}

Status CheckOptionalIdentifier(IdKind kind, std::string_view field, std::string_view value,
                               size_t max_bytes) {
  if (value.empty()) return Status::Ok();
  return CheckIdentifier(kind, field, value, max_bytes);
}

void CountBadIdentifier(std::string_view door, std::string_view field) {
  Metrics::Global()
      .GetCounter("femtoguard_bad_identifier_total",
                  "door=\"" + std::string(door) + "\",field=\"" + std::string(field) + "\"",
                  "Identifiers refused at the door for their character set or length "
                  "(docs/identifiers.md)")
      .Inc();
}

bool IsPrintable(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      ++i;
      continue;
    }
    uint32_t cp;
    size_t n = Utf8At(s, i, &cp);
    if (n == 0 || IsControl(cp) || cp == '\\') return false;
    i += n;
  }
  return true;
}

void AppendPrintable(std::string* out, std::string_view s, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t start = out->size();
  for (size_t i = 0; i < s.size();) {
    if (max_bytes != 0 && out->size() - start >= max_bytes) {
      out->append("...");
      return;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out->push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    uint32_t cp;
    size_t n = Utf8At(s, i, &cp);
    if (n == 0) {  // not UTF-8: the byte itself, visibly
      out->append("\\x");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
      ++i;
      continue;
    }
    if (cp == '\\') {
      out->append("\\\\");
    } else if (cp == '\n') {
      out->append("\\n");
    } else if (cp == '\r') {
      out->append("\\r");
    } else if (cp == '\t') {
      out->append("\\t");
    } else if (cp < 0x20 || cp == 0x7F) {
      out->append("\\x");
      out->push_back(kHex[cp >> 4]);
      out->push_back(kHex[cp & 15]);
    } else if (IsControl(cp)) {
      out->append("\\u");
      for (int shift = 12; shift >= 0; shift -= 4) out->push_back(kHex[(cp >> shift) & 15]);
    } else {
      out->append(s.substr(i, n));
    }
    i += n;
  }
}

std::string Printable(std::string_view s, size_t max_bytes) {
  if ((max_bytes == 0 || s.size() <= max_bytes) && IsPrintable(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  AppendPrintable(&out, s, max_bytes);
  return out;
}

}  // namespace fg
