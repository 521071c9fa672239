#pragma once

// Parsing of `registry.jsonl` (DESIGN.md §3.2): one device per line. CSG
// member IMSIs are pseudonymized here, at the edge; the raw values never
// leave this function.

#include <string_view>

#include "common/device.h"
#include "common/pseudonym.h"
#include "common/status.h"

namespace fg {

// Parses one line. On error the Status message says which field is wrong
// (the caller adds the line number). Nothing is partially returned.
Result<Device> ParseRegistryLine(std::string_view line, const Pseudonymizer& pseudonymizer);

// Validates "a.b.c.d/len" or an IPv6 CIDR; returns the canonical text.
Result<std::string> CanonicalCidr(std::string_view cidr);

}  // namespace fg
