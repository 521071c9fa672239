// Placeholder: filled in by the work that owns this subcommand.

#include "cli/commands.h"

namespace fg::cli {

void RegisterTokenCommands(CLI::App& app, Program& program) {}

}  // namespace fg::cli
