#pragma once

// U64Index: a uint64 key -> uint32 value map for tables read at random on a
// hot path (ECI -> cell, grid square -> coverage), where std::unordered_map
// costs a node and two or three cache misses per lookup. Open addressing
// with linear probing over a power-of-two array of 16-byte slots, load at
// most 3/4: a lookup is usually one cache line, and Prefetch can bring that
// line in ahead of time. Any uint64 key (0 included); values up to
// kAbsent - 1. No erase: the tables it serves only grow, or are rebuilt.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace fg {

class U64Index {
 public:
  static constexpr uint32_t kAbsent = UINT32_MAX;

  // The key's value, or kAbsent.
  uint32_t Find(uint64_t key) const {
    if (slots_.empty()) return kAbsent;
    const size_t mask = slots_.size() - 1;
    for (size_t i = Home(key, mask);; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.value_plus1 == 0) return kAbsent;
      if (s.key == key) return s.value_plus1 - 1;
    }
  }

  // Adds key -> value unless the key is present (the first value stays).
  void Insert(uint64_t key, uint32_t value) {
    if ((size_ + 1) * 4 > slots_.size() * 3) Rehash(std::max<size_t>(1024, slots_.size() * 2));
    const size_t mask = slots_.size() - 1;
    size_t i = Home(key, mask);
    for (; slots_[i].value_plus1 != 0; i = (i + 1) & mask) {
      if (slots_[i].key == key) return;
    }
    slots_[i] = Slot{key, value + 1};
    ++size_;
  }

  // Sized for `n` keys without a rehash.
  void Reserve(size_t n) {
    size_t want = 1024;
    while (want * 3 < n * 4) want *= 2;
    if (want > slots_.size()) Rehash(want);
  }

  // A hint: the line Find(key) starts on. Changes nothing.
  void Prefetch(uint64_t key) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[Home(key, slots_.size() - 1)]);
  }

  void Clear() {
    slots_.clear();
    size_ = 0;
  }
  size_t size() const { return size_; }
  size_t MemoryBytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  struct Slot {
    uint64_t key = 0;
    uint32_t value_plus1 = 0;  // 0: empty
  };

  // Fibonacci hashing: grid keys and ECIs are far from uniform in their low bits.
  static size_t Home(uint64_t key, size_t mask) {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
  }

  void Rehash(size_t n) {
    std::vector<Slot> old(n);
    old.swap(slots_);
    const size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.value_plus1 == 0) continue;
      size_t i = Home(s.key, mask);
      while (slots_[i].value_plus1 != 0) i = (i + 1) & mask;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;  // power-of-two size
  size_t size_ = 0;
};

}  // namespace fg
