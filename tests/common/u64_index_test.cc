// U64Index, the open-addressed key -> index table behind the cell database's
// ECI lookup and the macro coverage squares: it answers as a map would,
// through growth, for any key (0 and clustered grid keys included), and the
// first value inserted for a key stays.

#include "common/u64_index.h"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

namespace fg {
namespace {

TEST(U64IndexTest, AgreesWithAMapThroughGrowth) {
  std::mt19937_64 rng(3);
  U64Index index;
  std::unordered_map<uint64_t, uint32_t> want;
  for (uint32_t i = 0; i < 50000; ++i) {
    // Half random, half clustered like grid squares (a << 32 ^ b) and ECIs.
    uint64_t key = i % 2 ? rng() : (uint64_t{rng() % 64} << 32) ^ (rng() % 4096);
    if (i == 7) key = 0;
    index.Insert(key, i);
    want.try_emplace(key, i);
    if (i % 997 == 0) {
      for (const auto& [k, v] : want) ASSERT_EQ(index.Find(k), v) << k;
    }
  }
  EXPECT_EQ(index.size(), want.size());
  for (const auto& [k, v] : want) ASSERT_EQ(index.Find(k), v) << k;
  for (int i = 0; i < 10000; ++i) {
    uint64_t k = rng();
    if (!want.count(k)) {
      EXPECT_EQ(index.Find(k), U64Index::kAbsent);
    }
  }
}

TEST(U64IndexTest, TheFirstValueStaysAndClearEmpties) {
  U64Index index;
  EXPECT_EQ(index.Find(42), U64Index::kAbsent) << "empty";
  index.Prefetch(42);  // a hint on an empty table is fine
  index.Insert(42, 1);
  index.Insert(42, 2);
  EXPECT_EQ(index.Find(42), 1u);
  EXPECT_EQ(index.size(), 1u);
  index.Reserve(100000);
  EXPECT_EQ(index.Find(42), 1u) << "kept through a rehash";
  index.Clear();
  EXPECT_EQ(index.Find(42), U64Index::kAbsent);
  EXPECT_EQ(index.size(), 0u);
}

}  // namespace
}  // namespace fg
