// The ingest journal: what is appended and synced comes back, in order,
// after a reopen; a torn tail is cut off, never replayed; a refused publish
// leaves nothing behind; batch ids are taken once, across restarts; the
// backlog is bounded; processed segments are pruned.

#include "ingest/journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "testing/harness.h"

namespace fg::ingest {
namespace {

namespace fs = std::filesystem;

struct Seen {
  uint64_t seq;
  std::string batch_id;
  std::string payload;
};

std::vector<Seen> Reopen(const Journal::Options& o, std::unique_ptr<Journal>* out = nullptr) {
  std::vector<Seen> seen;
  auto j = Journal::Open(o, [&](const Journal::Record& r) {
    seen.push_back({r.seq, std::string(r.batch_id), std::string(r.payload)});
  });
  EXPECT_TRUE(j.ok()) << j.status().ToString();
  if (out && j.ok()) *out = std::move(j).value();
  return seen;
}

Status Accept(uint64_t) { return Status::Ok(); }

std::vector<fs::path> Segments(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("seg-", 0) == 0) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class JournalTest : public ::testing::Test {
 protected:
  testing::TempDir tmp_;
  Journal::Options options_{tmp_ / "journal"};
};

TEST_F(JournalTest, WhatWasSyncedComesBackInOrderAfterReopen) {
  {
    std::unique_ptr<Journal> j;
    EXPECT_TRUE(Reopen(options_, &j).empty());
    for (int i = 0; i < 5; ++i) {
      auto seq = j->Append(i % 2 ? "batch-" + std::to_string(i) : "",
                           "payload " + std::to_string(i), Accept);
      ASSERT_TRUE(seq.ok()) << seq.status().ToString();
      EXPECT_EQ(*seq, static_cast<uint64_t>(i + 1));
      ASSERT_TRUE(j->Sync(*seq).ok());
    }
  }
  auto seen = Reopen(options_);
  ASSERT_EQ(seen.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(seen[i].seq, static_cast<uint64_t>(i + 1));
    EXPECT_EQ(seen[i].payload, "payload " + std::to_string(i));
    EXPECT_EQ(seen[i].batch_id, i % 2 ? "batch-" + std::to_string(i) : "");
  }
}

TEST_F(JournalTest, ATornTailIsCutOffAndSeqsGoOn) {
  {
    std::unique_ptr<Journal> j;
    Reopen(options_, &j);
    for (int i = 0; i < 3; ++i)
      ASSERT_TRUE(j->Sync(*j->Append("", std::string(100, 'a' + i), Accept)).ok());
  }
  // A crash in the middle of the third record's write.
  auto seg = Segments(options_.dir).back();
  fs::resize_file(seg, fs::file_size(seg) - 7);
  std::unique_ptr<Journal> j;
  auto seen = Reopen(options_, &j);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].payload, std::string(100, 'b'));
  auto seq = j->Append("", "after", Accept);
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 3u);
  ASSERT_TRUE(j->Sync(*seq).ok());
  j.reset();
  seen = Reopen(options_);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2].payload, "after");
}

TEST_F(JournalTest, AFlippedByteIsNeverReplayed) {
  {
    std::unique_ptr<Journal> j;
    Reopen(options_, &j);
    for (int i = 0; i < 3; ++i)
      ASSERT_TRUE(j->Sync(*j->Append("", std::string(50, 'x'), Accept)).ok());
  }
  auto seg = Segments(options_.dir).back();
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(24 + 50 + 24 + 10);  // inside the second record's payload
    f.put('y');
  }
  auto seen = Reopen(options_);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].payload, std::string(50, 'x'));
}

TEST_F(JournalTest, ARefusedPublishLeavesNothingBehind) {
  std::unique_ptr<Journal> j;
  Reopen(options_, &j);
  ASSERT_TRUE(j->Append("", "one", Accept).ok());
  auto refused = j->Append("b", "two", [](uint64_t) { return Status::Unavailable("bus full"); });
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(j->FindBatch("b").has_value());  // a retry of "b" is taken
  auto three = j->Append("b", "three", Accept);
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(*three, 2u);
  ASSERT_TRUE(j->Sync(*three).ok());
  j.reset();
  auto seen = Reopen(options_);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].payload, "three");
}

TEST_F(JournalTest, ABatchIdIsTakenOnceAcrossRestarts) {
  {
    std::unique_ptr<Journal> j;
    Reopen(options_, &j);
    auto first = j->Append("client-7:batch-1", "events", Accept);
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE(j->Sync(*first).ok());
    auto again = j->Append("client-7:batch-1", "events", Accept);
    EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
    EXPECT_EQ(again.status().message(), std::to_string(*first));
  }
  std::unique_ptr<Journal> j;
  Reopen(options_, &j);
  EXPECT_EQ(j->FindBatch("client-7:batch-1"), std::optional<uint64_t>(1));
  EXPECT_EQ(j->Append("client-7:batch-1", "events", Accept).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(j->last_seq(), 1u);
}

TEST_F(JournalTest, TheBacklogIsBoundedUntilDetectionCatchesUp) {
  options_.segment_bytes = 1024;
  options_.max_backlog_bytes = 4096;
  std::unique_ptr<Journal> j;
  Reopen(options_, &j);
  const std::string payload(500, 'p');
  int taken = 0;
  Status refused;
  for (int i = 0; i < 100 && refused.ok(); ++i) {
    auto seq = j->Append("", payload, Accept);
    if (seq.ok()) {
      ++taken;
    } else {
      refused = seq.status();
    }
  }
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable);
  EXPECT_LT(taken, 20);
  j->Checkpoint(j->last_seq(), /*force=*/true);
  EXPECT_TRUE(j->Append("", payload, Accept).ok());
}

TEST_F(JournalTest, ProcessedSegmentsArePrunedAndTheCheckpointSurvives) {
  options_.segment_bytes = 1024;
  options_.retain_bytes = 0;
  {
    std::unique_ptr<Journal> j;
    Reopen(options_, &j);
    for (int i = 0; i < 20; ++i)
      ASSERT_TRUE(j->Sync(*j->Append("", std::string(300, 'a'), Accept)).ok());
    EXPECT_GT(Segments(options_.dir).size(), 4u);
    j->Checkpoint(15, /*force=*/true);
    EXPECT_EQ(j->checkpoint(), 15u);
  }
  // Segments wholly at or before 15 are gone; everything after 15 is kept.
  std::unique_ptr<Journal> j;
  auto seen = Reopen(options_, &j);
  ASSERT_FALSE(seen.empty());
  EXPECT_LE(seen.front().seq, 16u);
  EXPECT_EQ(seen.back().seq, 20u);
  EXPECT_LT(seen.size(), 20u);
  EXPECT_EQ(j->checkpoint(), 15u);
  EXPECT_EQ(*j->Append("", "next", Accept), 21u);
}

TEST_F(JournalTest, ConcurrentWritersAreAllDurable) {
  {
    std::unique_ptr<Journal> j;
    Reopen(options_, &j);
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; i < 50; ++i) {
          auto seq = j->Append("w" + std::to_string(t) + "-" + std::to_string(i), "x", Accept);
          ASSERT_TRUE(seq.ok());
          ASSERT_TRUE(j->Sync(*seq).ok());
        }
      });
    }
    for (auto& w : writers) w.join();
  }
  auto seen = Reopen(options_);
  ASSERT_EQ(seen.size(), 200u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i].seq, i + 1);
}

}  // namespace
}  // namespace fg::ingest
