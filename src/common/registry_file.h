#pragma once

// Parsing of `registry.jsonl` (DESIGN.md §3.2): one device per line. CSG
// member IMSIs are pseudonymized here, at the edge; the raw values never
// leave this function.

#include <cstdint>
#include <string_view>

#include "common/device.h"
#include "common/pseudonym.h"
#include "common/status.h"

namespace fg {

// The optional fields a registry line can carry. `device` is always there.
enum class RegistryField : uint32_t {
  kStatus = 1u << 0,
  kOwner = 1u << 1,
  kMode = 1u << 2,
  kSite = 1u << 3,
  kPrefixes = 1u << 4,
  kCsg = 1u << 5,
  kCertFp = 1u << 6,
  kMaxUes = 1u << 7,
  kRadio = 1u << 8,  // any of plmn, enb_id, gnb_id, csg_id, cells: the identity is replaced as a whole
};

// One parsed line and which fields it named. A field given as JSON null is
// named (it clears the value when merged); an absent field is not.
struct RegistryEntry {
  Device device;
  uint32_t present = 0;
  bool Has(RegistryField f) const { return (present & static_cast<uint32_t>(f)) != 0; }
};

// Parses one line. On error the Status message says which field is wrong
// (the caller adds the line number). Nothing is partially returned.
Result<RegistryEntry> ParseRegistryEntry(std::string_view line, const Pseudonymizer& pseudonymizer);
// The same, for callers that take a line as a whole device (replay, sim):
// absent fields have their defaults.
Result<Device> ParseRegistryLine(std::string_view line, const Pseudonymizer& pseudonymizer);

// `existing` with the attributes `entry` names replaced (merge import, the
// default of `device import`): an attribute the line does not name stays as
// it is. Identity, status and timestamps are never taken from the entry.
Device MergeRegistryEntry(const Device& existing, const RegistryEntry& entry);

// The radio identity as stored (devices.radio) and shown (`device show`):
// {"plmn":..,"enb_id":..,"gnb_id":..,"csg_id":..,"cells":[..]}, absent
// fields left out; "" for an empty identity.
std::string RadioIdentityJson(const RadioIdentity& r);
// Parses RadioIdentityJson's output, or the same fields of a registry line
// (`obj` is a JSON object's text). Validates as the registry does.
Result<RadioIdentity> ParseRadioIdentity(std::string_view json_text);

// Validates "a.b.c.d/len" or an IPv6 CIDR; returns the canonical text.
Result<std::string> CanonicalCidr(std::string_view cidr);

}  // namespace fg
