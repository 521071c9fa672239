// Ingest's side of the shared REM cell table (testing/rem_cases.h): a
// rem.scan cell is accepted or refused as admission accepts or refuses it.

#include <gtest/gtest.h>

#include <string>

#include "common/pseudonym.h"
#include "ingest/decoder.h"
#include "testing/rem_cases.h"

namespace fg::ingest {
namespace {

TEST(RemBounds, IngestAcceptsAndRefusesAsTheTableSays) {
  Pseudonymizer pseudonymizer(std::string(32, 'k'));
  EventDecoder decoder(pseudonymizer);
  detect::Event event;
  for (const auto& c : fg::testing::RemCellCases()) {
    std::string line =
        std::string(R"({"ts":"2025-09-01T12:00:00Z","type":"rem.scan","device":"FG-1","cells":[)") +
        c.cell + "]}";
    std::string buffer = line;
    buffer.append(EventDecoder::kPadding, ' ');
    DecodeResult r = decoder.Decode(buffer.data(), line.size(), &event);
    EXPECT_EQ(r == DecodeResult::kOk, c.ok) << c.cell << ": " << decoder.error();
  }
}

}  // namespace
}  // namespace fg::ingest
