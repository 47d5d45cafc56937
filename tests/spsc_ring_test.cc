// spsc_ring: capacity, order across the wrap point, full and empty rings,
// partial batches, and a two-thread stress with a checksum.

#include "pipeline/spsc_ring.h"

#include <gtest/gtest.h>

#include <numeric>
#include <thread>
#include <vector>

namespace flower {
namespace {

std::vector<uint64_t> iota(uint64_t from, size_t n) {
  std::vector<uint64_t> v(n);
  std::iota(v.begin(), v.end(), from);
  return v;
}

TEST(SpscRing, CapacityIsRoundedUpToAPowerOfTwo) {
  EXPECT_EQ(spsc_ring<int>(1).capacity(), 2u);
  EXPECT_EQ(spsc_ring<int>(1000).capacity(), 1024u);
  EXPECT_EQ(spsc_ring<int>(4096).capacity(), 4096u);
}

TEST(SpscRing, IndexesLiveOnSeparateCacheLines) {
  EXPECT_GE(sizeof(spsc_ring<int>), 3 * kCacheLine);
  EXPECT_EQ(alignof(spsc_ring<int>), kCacheLine);
}

TEST(SpscRing, EmptyRingPeeksNothing) {
  spsc_ring<int> r(8);
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(r.peek(8).empty());
  std::vector<int> out(4);
  EXPECT_EQ(r.pop(out), 0u);
}

TEST(SpscRing, FullRingAcceptsOnlyWhatFits) {
  spsc_ring<uint64_t> r(8);
  auto in = iota(0, 12);
  EXPECT_EQ(r.push(in), 8u);  // a prefix, never more than capacity
  EXPECT_EQ(r.size(), 8u);
  EXPECT_EQ(r.free_space(), 0u);
  EXPECT_EQ(r.push(in), 0u);
  EXPECT_TRUE(r.reserve(4).empty());
  std::vector<uint64_t> out(3);
  ASSERT_EQ(r.pop(out), 3u);
  EXPECT_EQ(out, (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(r.push(std::span<const uint64_t>(in).subspan(8)), 3u);  // room again after release
}

TEST(SpscRing, KeepsOrderAcrossTheWrapPoint) {
  spsc_ring<uint64_t> r(8);
  uint64_t next_in = 0, next_out = 0;
  for (int round = 0; round < 50; ++round) {  // 50 rounds of 5 in, 5 out: wraps many times
    auto in = iota(next_in, 5);
    ASSERT_EQ(r.push(in), 5u);
    next_in += 5;
    std::vector<uint64_t> out(5);
    ASSERT_EQ(r.pop(out), 5u);  // pop copies across the wrap in two pieces
    for (uint64_t v : out) ASSERT_EQ(v, next_out++);
  }
  EXPECT_TRUE(r.empty());
}

TEST(SpscRing, PeekStopsAtTheWrapPointAndReleaseAdvances) {
  spsc_ring<uint64_t> r(8);
  auto in = iota(0, 6);
  ASSERT_EQ(r.push(in), 6u);
  std::vector<uint64_t> sink(6);
  ASSERT_EQ(r.pop(sink), 6u);  // head = tail = 6
  auto more = iota(100, 5);
  ASSERT_EQ(r.push(more), 5u);  // slots 6,7 then 0,1,2
  auto first = r.peek(16);
  ASSERT_EQ(first.size(), 2u);  // contiguous part only
  EXPECT_EQ(first[0], 100u);
  r.release(first.size());
  auto second = r.peek(16);
  ASSERT_EQ(second.size(), 3u);
  EXPECT_EQ(second[2], 104u);
  r.release(3);
  EXPECT_TRUE(r.empty());
}

TEST(SpscRing, ReserveCommitPublishesOnlyCommittedSlots) {
  spsc_ring<uint64_t> r(16);
  auto slots = r.reserve(10);
  ASSERT_EQ(slots.size(), 10u);
  for (size_t i = 0; i < slots.size(); ++i) slots[i] = 7 * i;
  EXPECT_TRUE(r.peek(16).empty());  // nothing visible before commit
  r.commit(4);
  auto got = r.peek(16);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[3], 21u);
}

TEST(SpscRing, BatchBoundariesDoNotLoseOrDuplicate) {
  // Push in batches of 7, pop in batches of 5 through a 16-slot ring.
  spsc_ring<uint64_t> r(16);
  uint64_t pushed = 0, popped = 0;
  const uint64_t total = 10'000;
  while (popped < total) {
    if (pushed < total) {
      auto in = iota(pushed, std::min<uint64_t>(7, total - pushed));
      pushed += r.push(in);
    }
    std::vector<uint64_t> out(5);
    size_t n = r.pop(out);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], popped++);
  }
  EXPECT_EQ(pushed, total);
  EXPECT_TRUE(r.empty());
}

TEST(SpscRing, TwoThreadStressPreservesOrderAndChecksum) {
  spsc_ring<uint64_t> r(1024);
  constexpr uint64_t kTotal = 2'000'000;
  uint64_t expected_sum = 0;
  for (uint64_t i = 0; i < kTotal; ++i) expected_sum += i * 2654435761u;

  std::thread producer([&] {
    uint64_t next = 0;
    std::vector<uint64_t> batch;
    while (next < kTotal) {
      size_t n = std::min<uint64_t>(1 + next % 300, kTotal - next);  // varying batch sizes
      batch.resize(n);
      for (size_t i = 0; i < n; ++i) batch[i] = next + i;
      size_t done = 0;
      while (done < n) done += r.push(std::span<const uint64_t>(batch).subspan(done));
      next += n;
    }
  });
  uint64_t sum = 0, expect = 0;
  bool in_order = true;
  std::vector<uint64_t> out(257);
  while (expect < kTotal) {
    size_t n = r.pop(out);
    for (size_t i = 0; i < n; ++i) {
      in_order &= out[i] == expect++;
      sum += out[i] * 2654435761u;
    }
  }
  producer.join();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(sum, expected_sum);
  EXPECT_TRUE(r.empty());
}

}  // namespace
}  // namespace flower
