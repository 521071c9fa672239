#include "common/schema.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <vector>

namespace fg {
namespace {

std::string Num(double v) {
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string Join(std::string_view prefix, std::string_view path) {
  if (prefix.empty()) return std::string(path);
  if (path.empty()) return std::string(prefix);
  return std::string(prefix) + "." + std::string(path);
}

Status Bad(const YAML::Node& node, std::string_view prefix, std::string_view path,
           const std::string& what) {
  std::string where = Join(prefix, path);
  return Status::InvalidArgument(LineOf(node) + (where.empty() ? "top level" : where) + ": " +
                                 what);
}

bool ParseBool(std::string_view s, bool* out) {
  if (s == "true" || s == "yes" || s == "on") return *out = true, true;
  if (s == "false" || s == "no" || s == "off") return *out = false, true;
  return false;
}

bool ParseInt(std::string_view s, int64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

bool ParseNumber(std::string_view s, double* out) {
  if (s.empty()) return false;
  std::string text(s);
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && std::isfinite(*out);
}

bool InChoices(std::string_view choices, std::string_view v) {
  size_t start = 0;
  while (start <= choices.size()) {
    size_t bar = choices.find('|', start);
    std::string_view c =
        choices.substr(start, bar == std::string_view::npos ? std::string_view::npos : bar - start);
    if (c == v) return true;
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  return false;
}

std::string Shown(std::string_view v) {
  std::string s(v.substr(0, 64));
  return "'" + s + (v.size() > 64 ? "...'" : "'");
}

Status CheckScalar(const YAML::Node& v, const KeySpec& spec, std::string_view prefix,
                   const std::string& path) {
  if (!v.IsScalar()) {
    return Bad(v, prefix, path, std::string("expected ") + std::string(ValueTypeName(spec.type)));
  }
  const std::string& text = v.Scalar();
  switch (spec.type) {
    case ValueType::kBool: {
      bool b;
      if (!ParseBool(text, &b))
        return Bad(v, prefix, path, "expected true or false, got " + Shown(text));
      return Status::Ok();
    }
    case ValueType::kInt: {
      int64_t i;
      if (!ParseInt(text, &i))
        return Bad(v, prefix, path, "expected an integer, got " + Shown(text));
      if (static_cast<double>(i) < spec.min || static_cast<double>(i) > spec.max) {
        return Bad(v, prefix, path,
                   "must be in [" + Num(spec.min) + ", " + Num(spec.max) + "], got " + text);
      }
      return Status::Ok();
    }
    case ValueType::kNumber: {
      double d;
      if (!ParseNumber(text, &d))
        return Bad(v, prefix, path, "expected a number, got " + Shown(text));
      if (d < spec.min || d > spec.max) {
        return Bad(v, prefix, path,
                   "must be in [" + Num(spec.min) + ", " + Num(spec.max) + "], got " + text);
      }
      return Status::Ok();
    }
    default:
      if (!spec.choices.empty() && !InChoices(spec.choices, text)) {
        return Bad(v, prefix, path,
                   "must be one of " + std::string(spec.choices) + ", got " + Shown(text));
      }
      return Status::Ok();
  }
}

Status CheckValue(const YAML::Node& v, const KeySpec& spec, std::string_view prefix,
                  const std::string& path) {
  switch (spec.type) {
    case ValueType::kBool:
    case ValueType::kInt:
    case ValueType::kNumber:
    case ValueType::kString:
      return CheckScalar(v, spec, prefix, path);
    case ValueType::kStringList: {
      if (v.IsNull()) return Status::Ok();
      if (!v.IsSequence()) return Bad(v, prefix, path, "expected a list");
      for (size_t i = 0; i < v.size(); ++i) {
        std::string at = path + "[" + std::to_string(i) + "]";
        if (!v[i].IsScalar()) return Bad(v[i], prefix, at, "expected a single value");
        if (!spec.choices.empty() && !InChoices(spec.choices, v[i].Scalar())) {
          return Bad(
              v[i], prefix, at,
              "must be one of " + std::string(spec.choices) + ", got " + Shown(v[i].Scalar()));
        }
      }
      return Status::Ok();
    }
    case ValueType::kMapList: {
      if (v.IsNull()) return Status::Ok();
      if (!v.IsSequence())
        return Bad(v, prefix, path, "expected a list of maps (" + std::string(spec.choices) + ")");
      for (size_t i = 0; i < v.size(); ++i) {
        std::string at = path + "[" + std::to_string(i) + "]";
        if (!v[i].IsMap())
          return Bad(v[i], prefix, at, "expected a map (" + std::string(spec.choices) + ")");
        for (auto e = v[i].begin(); e != v[i].end(); ++e) {
          std::string field = e->first.Scalar();
          std::string fat = at + "." + field;
          bool known = false;
          std::string_view fields = spec.choices;
          size_t start = 0;
          while (start <= fields.size()) {
            size_t comma = fields.find(',', start);
            if (fields.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                                     : comma - start) == field) {
              known = true;
            }
            if (comma == std::string_view::npos) break;
            start = comma + 1;
          }
          if (!known)
            return Bad(e->first, prefix, fat,
                       "unknown key (known here: " + std::string(spec.choices) + ")");
          if (!e->second.IsScalar()) return Bad(e->second, prefix, fat, "expected a single value");
        }
      }
      return Status::Ok();
    }
    case ValueType::kMap: {
      if (v.IsNull()) return Status::Ok();
      if (!v.IsMap()) return Bad(v, prefix, path, "expected a map");
      for (auto e = v.begin(); e != v.end(); ++e) {
        if (!e->first.IsScalar()) return Bad(e->first, prefix, path, "expected scalar keys");
        std::string at = path + "." + e->first.Scalar();
        if (!e->second.IsScalar()) return Bad(e->second, prefix, at, "expected a single value");
        if (!spec.choices.empty() && !InChoices(spec.choices, e->second.Scalar())) {
          return Bad(
              e->second, prefix, at,
              "must be one of " + std::string(spec.choices) + ", got " + Shown(e->second.Scalar()));
        }
      }
      return Status::Ok();
    }
  }
  return Status::Ok();
}

// The names one level below `path` that the specs know ("a, b, c").
std::string KnownHere(std::span<const KeySpec> specs, const std::string& path) {
  std::vector<std::string> names;
  std::string head = path.empty() ? "" : path + ".";
  for (const KeySpec& s : specs) {
    if (s.path.substr(0, head.size()) != head) continue;
    std::string_view rest = s.path.substr(head.size());
    std::string name(rest.substr(0, rest.find('.')));
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

Status Walk(const YAML::Node& node, std::span<const KeySpec> specs, std::string_view prefix,
            const std::string& path) {
  if (node.IsNull()) return Status::Ok();
  if (!node.IsMap()) return Bad(node, prefix, path, "expected a map");
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) return Bad(it->first, prefix, path, "expected scalar keys");
    std::string key = it->first.Scalar();
    std::string rel = path.empty() ? key : path + "." + key;
    if (const KeySpec* spec = FindKey(specs, rel)) {
      FG_RETURN_IF_ERROR(CheckValue(it->second, *spec, prefix, rel));
      continue;
    }
    std::string head = rel + ".";
    bool group = std::any_of(specs.begin(), specs.end(), [&](const KeySpec& s) {
      return s.path.substr(0, head.size()) == head;
    });
    if (group) {
      FG_RETURN_IF_ERROR(Walk(it->second, specs, prefix, rel));
      continue;
    }
    return Bad(it->first, prefix, rel, "unknown key (known here: " + KnownHere(specs, path) + ")");
  }
  return Status::Ok();
}

}  // namespace

std::string_view ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kBool:
      return "true or false";
    case ValueType::kInt:
      return "an integer";
    case ValueType::kNumber:
      return "a number";
    case ValueType::kString:
      return "a single value";
    case ValueType::kStringList:
      return "a list";
    case ValueType::kMapList:
      return "a list of maps";
    case ValueType::kMap:
      return "a map";
  }
  return "a value";
}

std::string LineOf(const YAML::Node& node) {
  try {
    YAML::Mark m = node.Mark();
    if (m.line >= 0) return "line " + std::to_string(m.line + 1) + ": ";
  } catch (const YAML::Exception&) {
  }
  return {};
}

const KeySpec* FindKey(std::span<const KeySpec> specs, std::string_view path) {
  for (const KeySpec& s : specs) {
    if (s.path == path) return &s;
  }
  return nullptr;
}

Status ValidateKeys(const YAML::Node& node, std::span<const KeySpec> specs,
                    std::string_view prefix) {
  try {
    return Walk(node, specs, prefix, "");
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(Join(prefix, "") + ": " + e.what());
  }
}

Status CheckDeclaredRange(std::span<const KeySpec> specs, std::string_view path, double value,
                          std::string_view prefix) {
  const KeySpec* s = FindKey(specs, path);
  if (!s) return Status::Internal("undeclared key " + std::string(path));
  if (!std::isfinite(value) || value < s->min || value > s->max) {
    return Status::InvalidArgument(Join(prefix, path) + " must be in [" + Num(s->min) + ", " +
                                   Num(s->max) + "], got " + Num(value));
  }
  return Status::Ok();
}

std::string RenderKeyTable(std::span<const KeySpec> specs, std::string_view prefix) {
  std::string out = "| key | type | default | range | meaning |\n|---|---|---|---|---|\n";
  for (const KeySpec& s : specs) {
    std::string type;
    switch (s.type) {
      case ValueType::kBool:
        type = "bool";
        break;
      case ValueType::kInt:
        type = "integer";
        break;
      case ValueType::kNumber:
        type = "number";
        break;
      case ValueType::kString:
        type = "string";
        break;
      case ValueType::kStringList:
        type = "list of strings";
        break;
      case ValueType::kMapList:
        type = "list of maps";
        break;
      case ValueType::kMap:
        type = "map";
        break;
    }
    std::string range;
    if (s.type == ValueType::kInt || s.type == ValueType::kNumber) {
      if (s.min != kNoMin || s.max != kNoMax) range = "[" + Num(s.min) + ", " + Num(s.max) + "]";
    } else if (s.type == ValueType::kMapList) {
      range = "fields: " + std::string(s.choices);
    } else if (!s.choices.empty()) {
      range = std::string(s.choices);
      for (char& c : range) c = c == '|' ? ',' : c;
    }
    out += "| `" + Join(prefix, s.path) + "` | " + type + " | `" + std::string(s.default_text) +
           "` | " + range + " | " + std::string(s.meaning) + " |\n";
  }
  return out;
}

}  // namespace fg
