#include "ingest/seed.h"

#include <cstring>

#include "common/registry_file.h"
#include "ingest/jsonl_reader.h"

namespace fg::ingest {

Result<size_t> LoadRegistryFile(const std::string& path, const Pseudonymizer& pseudonymizer, detect::World* world,
                                const std::function<void(uint64_t line, const Status& why)>& on_bad_line) {
  // CSG lists make registry lines longer than events: allow 1 MiB.
  constexpr size_t kMaxRegistryLine = 1 << 20;
  FG_ASSIGN_OR_RETURN(auto reader, JsonLinesReader::Open(path, kMaxRegistryLine));
  JsonLinesReader::Line line;
  size_t registered = 0;
  while (reader->Next(&line)) {
    if (line.oversized) {
      on_bad_line(line.number, Status::InvalidArgument("line longer than 1 MiB (oversized)"));
      continue;
    }
    std::string_view text(line.data, line.size);
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto device = ParseRegistryLine(text, pseudonymizer);
    std::memset(line.data, ' ', line.size);  // raw CSG IMSIs
    if (!device.ok()) {
      on_bad_line(line.number, device.status());
      continue;
    }
    world->Register(*device);
    ++registered;
  }
  FG_RETURN_IF_ERROR(reader->status());
  return registered;
}

Status SeedFromStore(SeedSources store, const SeedOptions& options, detect::World* world, detect::RuleSet* rules) {
  if (options.devices) {
    FG_ASSIGN_OR_RETURN(auto devices, store.devices.ListDevices(DeviceFilter{}));
    for (const Device& d : devices) world->Register(d);
  }
  FG_ASSIGN_OR_RETURN(auto endpoints, store.endpoints.ListEndpoints());
  for (const Endpoint& e : endpoints) world->SetEndpointStatus(e.address, EndpointStatusName(e.status));

  FG_ASSIGN_OR_RETURN(auto legacy, store.credentials.ListLegacyCredentials());
  if (!legacy.empty()) {
    for (const char* rule : {"cert.legacy", "cert.shared"}) {
      const detect::RuleConfig* existing = rules->Find(rule);
      if (existing && !existing->outcome.enabled) continue;
      auto& maps = rules->MutableRule(rule).params.maps["legacy_credentials"];
      for (const LegacyCredential& c : legacy) {
        bool known = false;
        for (const auto& m : maps) {
          auto fp = m.find("fp");
          known = known || (fp != m.end() && fp->second == c.fp);
        }
        if (!known) maps.push_back({{"fp", c.fp}, {"cutoff", FormatRfc3339(c.cutoff_ms)}});
      }
    }
  }

  if (options.blocks) {
    FG_ASSIGN_OR_RETURN(auto blocks, store.blocks.ListBlocks());
    for (const Block& b : blocks) {
      if (options.manual_blocks_only && !b.alert_id.empty()) continue;
      if (b.kind == "device") {
        world->device(world->Intern(b.value)).blocked = true;
      } else if (b.kind == "payments") {
        detect::SubjectId s;
        if (detect::SubjectId::FromString(b.value, &s)) world->MutableSubscriber(s).payments_held = true;
      }
    }
  }
  return Status::Ok();
}

}  // namespace fg::ingest
