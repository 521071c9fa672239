// SubjectList: the inline-then-heap list of a femtocell's CSG and attached
// subscribers behaves as a std::vector of the same operations would,
// across the inline/heap boundary, copies and moves.

#include "detect/subject_list.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace fg::detect {
namespace {

SubjectId Id(uint32_t n) {
  SubjectId s;
  for (size_t i = 0; i < 4; ++i) s.bytes[i] = static_cast<uint8_t>(n >> (8 * i));
  s.bytes[11] = 1;  // never the empty id
  return s;
}

template <size_t N>
void ExpectSame(const SubjectList<N>& got, const std::vector<SubjectId>& want) {
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(got.empty(), want.empty());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << i;
  EXPECT_GE(got.capacity(), got.size());
}

TEST(SubjectListTest, InlineUpToNThenHeapAndBackOnShrink) {
  SubjectList<3> l;
  EXPECT_FALSE(l.on_heap());
  EXPECT_EQ(l.capacity(), 3u);
  for (uint32_t i = 0; i < 3; ++i) l.push_back(Id(i));
  EXPECT_FALSE(l.on_heap()) << "three fit inline";
  l.push_back(Id(3));
  EXPECT_TRUE(l.on_heap());
  ExpectSame(l, {Id(0), Id(1), Id(2), Id(3)});
  l.erase_at(0);
  EXPECT_TRUE(l.on_heap()) << "erasing keeps the block";
  l.shrink_to_fit();
  EXPECT_FALSE(l.on_heap()) << "three fit inline again";
  ExpectSame(l, {Id(1), Id(2), Id(3)});
}

TEST(SubjectListTest, CopiesAndMovesAreIndependent) {
  for (uint32_t n : {0u, 2u, 6u, 40u}) {
    SubjectList<6> a;
    std::vector<SubjectId> want;
    for (uint32_t i = 0; i < n; ++i) {
      a.push_back(Id(i));
      want.push_back(Id(i));
    }
    SubjectList<6> b = a;
    b.push_back(Id(999));
    ExpectSame(a, want);
    SubjectList<6> c = std::move(b);
    EXPECT_TRUE(b.empty());
    want.push_back(Id(999));
    ExpectSame(c, want);
    a = c;
    ExpectSame(a, want);
    c = std::move(a);
    ExpectSame(c, want);
    c = c;  // self-assignment changes nothing
    ExpectSame(c, want);
  }
}

TEST(SubjectListTest, AgreesWithAVectorThroughRandomChurn) {
  std::mt19937 rng(5);
  SubjectList<3> l;
  std::vector<SubjectId> v;
  for (int step = 0; step < 20000; ++step) {
    switch (rng() % 7) {
      case 0:
      case 1:
      case 2: {
        SubjectId s = Id(rng() % 12);
        l.push_back(s);
        v.push_back(s);
        break;
      }
      case 3:
        if (!v.empty()) {
          size_t i = rng() % v.size();
          l.erase_at(i);
          v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
        }
        break;
      case 4: {
        SubjectId s = Id(rng() % 12);
        size_t want = static_cast<size_t>(std::erase(v, s));
        EXPECT_EQ(l.erase_value(s), want);
        break;
      }
      case 5: {
        size_t n = v.empty() ? 0 : rng() % (v.size() + 1);
        l.truncate(n);
        v.resize(n);
        break;
      }
      default:
        if (rng() % 50 == 0) {
          l.clear();
          v.clear();
        }
        l.shrink_to_fit();
        break;
    }
    ExpectSame(l, v);
    if (::testing::Test::HasFailure()) return;
  }
}

}  // namespace
}  // namespace fg::detect
