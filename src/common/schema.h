#pragma once

// Declared, typed configuration keys: one table per file (config.yaml,
// admission.yaml) or per rule's `params:` (each detector declares its own).
// A loader validates a YAML node against the table before it reads a value:
// an unknown key, a wrong type or an out-of-range value is refused with the
// key's path (e.g. `rules.cert.clone.params.grace_s`) and its line. The same
// tables are the source of docs/configuration.md (RenderKeyTable, printed
// by `femtoguard config keys`), so a key cannot be added without its type,
// default, range and meaning.

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace YAML {
class Node;
}

namespace fg {

enum class ValueType : uint8_t {
  kBool,        // true | false (yes/no, on/off accepted)
  kInt,         // an integer, no fraction
  kNumber,      // a finite decimal number
  kString,      // any scalar (choices, when set, restricts it)
  kStringList,  // a list of scalars (choices, when set, restricts each)
  kMapList,     // a list of maps whose keys are listed in `fields` (comma-separated)
  kMap,         // a map of scalar to scalar, keys checked by the loader (e.g. verdicts)
};
std::string_view ValueTypeName(ValueType t);

inline constexpr double kNoMin = -std::numeric_limits<double>::infinity();
inline constexpr double kNoMax = std::numeric_limits<double>::infinity();

struct KeySpec {
  std::string_view path;  // dotted, relative to the node validated ("gnss.margin_m")
  ValueType type;
  std::string_view default_text;  // as the docs show it ("60", "[]", "(none)")
  double min = kNoMin;            // kInt / kNumber: inclusive bounds
  double max = kNoMax;
  std::string_view meaning;       // one line, for the docs
  std::string_view choices = {};  // kString / kStringList: "a|b|c"; kMapList: fields "fp,cutoff"
};

// A reason code (admission) or evidence kind (detection): what it means and
// what the operator should do about it. The source of docs/reasons.md.
struct ReasonSpec {
  std::string_view code;
  std::string_view meaning;
  std::string_view action;  // what the operator should do
};

// Validates `node` (a map, or null = empty) against `specs`. `prefix` is
// prepended to key paths in messages ("rules.cert.clone.params"). The error
// (InvalidArgument) reads "line L: PATH: what" (the line when yaml-cpp has it).
Status ValidateKeys(const YAML::Node& node, std::span<const KeySpec> specs, std::string_view prefix);

// The spec of `path`, or nullptr.
const KeySpec* FindKey(std::span<const KeySpec> specs, std::string_view path);

// An integer range check of an already-typed value against the spec of
// `path` (for values set by code, e.g. `init` flags): "PATH must be in [a, b], got v".
Status CheckDeclaredRange(std::span<const KeySpec> specs, std::string_view path, double value,
                          std::string_view prefix = {});

// "line L: " for a node with a position, "" otherwise.
std::string LineOf(const YAML::Node& node);

// Markdown table of `specs`: | key | type | default | range | meaning |,
// each path prefixed with `prefix` ("" for none).
std::string RenderKeyTable(std::span<const KeySpec> specs, std::string_view prefix = {});

}  // namespace fg
