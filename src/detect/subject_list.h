#pragma once

// SubjectList<N>: a list of subscriber pseudonyms that keeps up to N of them
// inside the object and moves to the heap beyond. A femtocell's CSG and the
// subscribers attached to it are short lists (a home CSG has a handful of
// members); inline, reading them costs no memory access of its own. At
// fleet scale each such access is a random cache line and TLB entry per
// event, which is what replay spends most of its time waiting for.
//
// Order is kept (attached: oldest first; csg: sorted by its owner). Element
// pointers are invalidated by any change, as std::vector's.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "detect/event.h"

namespace fg::detect {

template <size_t N>
class SubjectList {
  static_assert(N >= 1);

 public:
  SubjectList() = default;
  SubjectList(const SubjectList& o) { Assign(o.begin(), o.end()); }
  SubjectList(SubjectList&& o) noexcept { Take(o); }
  SubjectList& operator=(const SubjectList& o) {
    if (this != &o) Assign(o.begin(), o.end());
    return *this;
  }
  SubjectList& operator=(SubjectList&& o) noexcept {
    if (this != &o) {
      Free();
      Take(o);
    }
    return *this;
  }
  ~SubjectList() { Free(); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return heap_cap_ != 0 ? heap_cap_ : N; }
  bool on_heap() const { return heap_cap_ != 0; }
  SubjectId* data() { return heap_cap_ != 0 ? u_.heap : u_.inline_ids; }
  const SubjectId* data() const { return heap_cap_ != 0 ? u_.heap : u_.inline_ids; }
  SubjectId* begin() { return data(); }
  SubjectId* end() { return data() + size_; }
  const SubjectId* begin() const { return data(); }
  const SubjectId* end() const { return data() + size_; }
  const SubjectId& operator[](size_t i) const { return data()[i]; }

  void push_back(const SubjectId& s) {
    if (size_ == capacity()) Reserve(capacity() * 2);
    data()[size_++] = s;
  }
  // Removes the element at `i`, keeping the others' order.
  void erase_at(size_t i) {
    SubjectId* d = data();
    std::memmove(d + i, d + i + 1, (size_ - i - 1) * sizeof(SubjectId));
    --size_;
  }
  // Removes every element equal to `s`; returns how many.
  size_t erase_value(const SubjectId& s) {
    SubjectId* new_end = std::remove(begin(), end(), s);
    size_t removed = static_cast<size_t>(end() - new_end);
    size_ -= static_cast<uint32_t>(removed);
    return removed;
  }
  // Keeps the first `n` (n <= size()).
  void truncate(size_t n) { size_ = static_cast<uint32_t>(std::min<size_t>(n, size_)); }
  void clear() { size_ = 0; }

  // Back inline when it fits, else a heap block of exactly size().
  void shrink_to_fit() {
    if (heap_cap_ == 0 || heap_cap_ == size_) return;
    SubjectId* old = u_.heap;
    uint32_t n = size_;
    if (n <= N) {
      heap_cap_ = 0;
      std::memcpy(u_.inline_ids, old, n * sizeof(SubjectId));
    } else {
      u_.heap = new SubjectId[n];
      std::memcpy(u_.heap, old, n * sizeof(SubjectId));
      heap_cap_ = n;
    }
    delete[] old;
  }

 private:
  void Reserve(size_t cap) {
    if (cap <= capacity()) return;
    SubjectId* bigger = new SubjectId[cap];
    std::memcpy(bigger, data(), size_ * sizeof(SubjectId));
    if (heap_cap_ != 0) delete[] u_.heap;
    u_.heap = bigger;
    heap_cap_ = static_cast<uint32_t>(cap);
  }
  void Assign(const SubjectId* b, const SubjectId* e) {
    size_ = 0;
    Reserve(static_cast<size_t>(e - b));
    std::copy(b, e, data());
    size_ = static_cast<uint32_t>(e - b);
  }
  void Take(SubjectList& o) {
    size_ = o.size_;
    heap_cap_ = o.heap_cap_;
    std::memcpy(&u_, &o.u_, sizeof u_);  // the heap pointer or the inline ids
    o.size_ = 0;
    o.heap_cap_ = 0;
  }
  void Free() {
    if (heap_cap_ != 0) delete[] u_.heap;
    heap_cap_ = 0;
    size_ = 0;
  }

  uint32_t size_ = 0;
  uint32_t heap_cap_ = 0;  // 0: the ids are inline
  union Storage {
    Storage() {}
    SubjectId inline_ids[N];
    SubjectId* heap;
  } u_;
};

}  // namespace fg::detect
