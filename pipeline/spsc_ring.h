#pragma once
// spsc_ring: bounded lock-free ring between exactly one producer thread and
// exactly one consumer thread, moving spans of trivially copyable items.
//
//   spsc_ring<decoded_packet> ring(4096);      // capacity rounded up to 2^k
//   // producer thread                          // consumer thread
//   size_t n = ring.push(batch);                auto r = ring.peek(256);
//   if (n < batch.size()) ... ring full         process(r); ring.release(r.size());
//
// Layout (as DPDK's rte_ring and seastar's queues do it): the producer's
// index and the consumer's index live on separate cache lines, and each side
// keeps a private copy of the other side's index, re-reading the shared one
// only when its copy says the ring looks full (producer) or empty
// (consumer). A batch costs one acquire load at most and one release store.
// Indexes are free-running 64-bit counters; slot = index & mask.
//
// Ownership: the producer owns push/reserve/commit, the consumer owns
// peek/pop/release. size()/empty() may be called from either side and are
// only a hint. No allocation after construction; every operation is noexcept.

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <type_traits>

namespace flower {

inline constexpr size_t kCacheLine = 64;

template <typename T>
class spsc_ring {
  static_assert(std::is_trivially_copyable_v<T>, "items are copied with memcpy");

 public:
  // `min_capacity` is rounded up to a power of two (at least 2).
  explicit spsc_ring(size_t min_capacity)
      : capacity_(std::bit_ceil(std::max<size_t>(min_capacity, 2))),
        mask_(capacity_ - 1),
        slots_(new T[capacity_]) {}

  spsc_ring(const spsc_ring&) = delete;
  spsc_ring& operator=(const spsc_ring&) = delete;

  size_t capacity() const noexcept { return capacity_; }

  // --- producer side -------------------------------------------------------

  // Free slots as seen by the producer (refreshes its copy of the tail).
  size_t free_space() noexcept {
    size_t free = capacity_ - (prod_.head - prod_.tail_cache);
    if (free == 0) {
      prod_.tail_cache = cons_.tail.load(std::memory_order_acquire);
      free = capacity_ - (prod_.head - prod_.tail_cache);
    }
    return free;
  }

  // Free slots, re-reading the consumer's tail if fewer than `want` look
  // free: for a producer that takes a whole batch or nothing.
  size_t free_space_for(size_t want) noexcept { return room(want); }

  // Copy as many items as fit (all or a prefix); returns how many.
  size_t push(std::span<const T> items) noexcept {
    size_t n = std::min(items.size(), room(items.size()));
    if (n == 0) return 0;
    const size_t at = prod_.head & mask_;
    const size_t first = std::min(n, capacity_ - at);
    std::memcpy(static_cast<void*>(slots_.get() + at), items.data(), first * sizeof(T));
    if (n > first) std::memcpy(static_cast<void*>(slots_.get()), items.data() + first, (n - first) * sizeof(T));
    publish(n);
    return n;
  }

  // Contiguous writable slots (up to `max`, may be fewer at the wrap point or
  // when the ring is nearly full). Fill them, then commit(k) with k <= size.
  std::span<T> reserve(size_t max) noexcept {
    size_t n = std::min(max, room(max));
    const size_t at = prod_.head & mask_;
    n = std::min(n, capacity_ - at);
    return {slots_.get() + at, n};
  }
  void commit(size_t n) noexcept { publish(n); }

  // --- consumer side -------------------------------------------------------

  // Contiguous readable items (up to `max`; fewer at the wrap point). They
  // stay valid and writable by the consumer until release().
  std::span<T> peek(size_t max) noexcept {
    size_t avail = cons_.head_cache - cons_.tail;
    if (avail == 0) {
      cons_.head_cache = prod_head_.load(std::memory_order_acquire);
      avail = cons_.head_cache - cons_.tail;
    }
    const size_t at = cons_.tail & mask_;
    const size_t n = std::min({max, avail, capacity_ - at});
    return {slots_.get() + at, n};
  }

  void release(size_t n) noexcept {
    assert(n <= cons_.head_cache - cons_.tail);
    cons_.tail.store(cons_.tail.load(std::memory_order_relaxed) + n, std::memory_order_release);
  }

  // Copy out up to out.size() items across the wrap point; returns how many.
  size_t pop(std::span<T> out) noexcept {
    size_t done = 0;
    while (done < out.size()) {
      std::span<T> r = peek(out.size() - done);
      if (r.empty()) break;
      std::memcpy(static_cast<void*>(out.data() + done), r.data(), r.size() * sizeof(T));
      release(r.size());
      done += r.size();
    }
    return done;
  }

  // --- either side (hints) -------------------------------------------------
  size_t size() const noexcept {
    const uint64_t t = cons_.tail.load(std::memory_order_acquire);
    const uint64_t h = prod_head_.load(std::memory_order_acquire);
    return static_cast<size_t>(h - t);
  }
  bool empty() const noexcept { return size() == 0; }

 private:
  size_t room(size_t want) noexcept {
    size_t free = capacity_ - (prod_.head - prod_.tail_cache);
    if (free < want) {
      prod_.tail_cache = cons_.tail.load(std::memory_order_acquire);
      free = capacity_ - (prod_.head - prod_.tail_cache);
    }
    return free;
  }
  void publish(size_t n) noexcept {
    prod_.head += n;
    prod_head_.store(prod_.head, std::memory_order_release);
  }

  // Read-only after construction.
  const size_t capacity_;
  const size_t mask_;
  const std::unique_ptr<T[]> slots_;

  // Written by the producer, read by the consumer.
  alignas(kCacheLine) std::atomic<uint64_t> prod_head_{0};
  // Producer-private: its own head and its copy of the consumer's tail.
  alignas(kCacheLine) struct {
    uint64_t head = 0;
    uint64_t tail_cache = 0;
  } prod_;
  // Written by the consumer, read by the producer; with the consumer's copy
  // of the head on the same line (both only touched by the consumer thread
  // except the tail load on the producer's slow path).
  alignas(kCacheLine) struct {
    std::atomic<uint64_t> tail{0};
    uint64_t head_cache = 0;
  } cons_;
};

}  // namespace flower
