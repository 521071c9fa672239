#pragma once

// Every config.yaml key with its type, default, range and meaning
// (config.cc's table; docs/configuration.md, `femtoguard config keys`).
// Config::FromYaml refuses a key not listed there. Kept apart from config.h
// so that the table can grow without touching every includer of config.h.

#include <span>

#include "common/schema.h"

namespace fg {

std::span<const KeySpec> ConfigKeys();

}  // namespace fg
