// The ceiling replay is measured against (bench/replay_bench.sh): the same
// events file read with the same JsonLinesReader and parsed with simdjson,
// and nothing else; or decoded into detect::Event (pseudonyms included)
// without running the engine. Single-threaded, like replay.
//
//   replay_parse_bench --events FILE [--mode read|parse|decode]
//
// read:   lines only (the I/O and line-splitting floor)
// parse:  + simdjson DOM parse of each line, one reused parser (the ceiling)
// decode: + EventDecoder: fields, validation, HMAC pseudonyms

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

#include <simdjson.h>

#include "common/pseudonym.h"
#include "detect/event.h"
#include "ingest/decoder.h"
#include "ingest/jsonl_reader.h"

int main(int argc, char** argv) {
  std::string events, mode = "parse";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--events") == 0) events = argv[i + 1];
    else if (std::strcmp(argv[i], "--mode") == 0) mode = argv[i + 1];
  }
  if (events.empty() || (mode != "read" && mode != "parse" && mode != "decode")) {
    std::fprintf(stderr, "usage: replay_parse_bench --events FILE [--mode read|parse|decode]\n");
    return 2;
  }
  auto reader = fg::ingest::JsonLinesReader::Open(events);
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    return 2;
  }
  simdjson::dom::parser parser;
  if (parser.allocate(64 * 1024 + 1)) return 1;
  fg::Pseudonymizer pseudonymizer(fg::Pseudonymizer::GenerateKey());
  fg::ingest::EventDecoder decoder(pseudonymizer);
  fg::detect::Event event;
  fg::ingest::JsonLinesReader::Line line;
  uint64_t lines = 0, ok = 0, fields = 0;
  auto cpu = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  };
  double cpu_start = cpu();
  auto start = std::chrono::steady_clock::now();
  while ((*reader)->Next(&line)) {
    ++lines;
    if (line.oversized || line.size == 0) continue;
    if (mode == "parse") {
      simdjson::dom::element doc;
      if (parser.parse(line.data, line.size, false).get(doc)) continue;
      simdjson::dom::object obj;
      if (doc.get_object().get(obj)) continue;
      fields += obj.size();  // touch the tape like a decoder would start to
      ++ok;
    } else if (mode == "decode") {
      if (decoder.Decode(line.data, line.size, &event) == fg::ingest::DecodeResult::kOk) ++ok;
    } else {
      ++ok;
    }
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double c = cpu() - cpu_start;
  std::printf("mode=%s lines=%" PRIu64 " ok=%" PRIu64 " bytes=%" PRIu64
              " seconds=%.3f cpu_seconds=%.3f lines_per_s=%.0f lines_per_cpu_s=%.0f MB_per_s=%.1f\n",
              mode.c_str(), lines, ok, (*reader)->bytes_read(), s, c, lines / s, lines / c,
              (*reader)->bytes_read() / s / 1e6);
  return fields == 0 && mode == "parse" && lines > 0 ? 1 : 0;
}
