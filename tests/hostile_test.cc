// The engine under a hostile mix (tests/hostile_mix.h): fragment floods,
// IPv6 extension chains at and past their limit, tunnels nested past
// theirs, zero-length and truncated frames. Every packet is counted under
// the right name, state stays within its configured size, and the data path
// allocates nothing (this binary counts every operator new).

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "pipeline/fragment_cache.h"
#include "tests/hostile_mix.h"
#include "tests/hostile_traffic.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_allocations{0};
}  // namespace

// Replaced for the whole test binary: counts while g_counting is set. The
// pair is malloc/free on both sides; GCC cannot see that across the
// replacement and warns.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace flower {
namespace {

using namespace flower::test;

uint64_t status_of(const engine_counters& c, decode_status s) { return c.status[static_cast<size_t>(s)]; }

struct allocation_count {
  allocation_count() {
    g_allocations = 0;
    g_counting = true;
  }
  ~allocation_count() { g_counting = false; }
  uint64_t now() const { return g_allocations.load(); }
};

TEST(HostileMix, TheCounterCountsAllocations) {
  allocation_count count;
  std::vector<int> v(100, 1);
  asm volatile("" : : "r"(v.data()) : "memory");  // the allocation must happen
  EXPECT_EQ(count.now(), 1u) << "the replaced operator new is the one in use";
}

engine_config hostile_config() {
  engine_config c;
  c.table.max_flows = 2048;   // far fewer than the flood's flows: the table must stay full, not grow
  c.table.huge_pages = false;
  c.fragment_slots = 512;     // far fewer than the flood's datagrams
  c.hash_seed = 3;
  return c;
}

TEST(HostileMix, EveryPacketIsCountedStateIsBoundedNothingIsAllocated) {
  constexpr size_t kPackets = 60000;
  const hostile_mix mix = make_hostile_mix(kPackets, kT0);
  const engine_config config = hostile_config();
  flow_engine engine(config);
  collecting_sink sink;
  sink.records.reserve(kPackets);  // the sink is the caller's; only the engine is measured
  record_buffer out(sink);
  const size_t memory = engine.shard().table().memory_bytes();

  uint64_t allocations;
  {
    allocation_count count;
    for (size_t i = 0; i < kPackets; i += 256)
      engine.process(std::span<const packet_view>(mix.views).subspan(i, std::min<size_t>(256, kPackets - i)), out);
    allocations = count.now();
  }
  EXPECT_EQ(allocations, 0u) << "the data path allocated";

  const engine_counters c = engine.counters();
  // The ledger: every packet, under its name.
  EXPECT_EQ(c.received, kPackets);
  EXPECT_EQ(c.received, c.metered + c.malformed() + c.unsupported());
  EXPECT_EQ(status_of(c, decode_status::ipv6_ext_depth), mix.of(hostile_kind::v6_ext_beyond));
  EXPECT_EQ(status_of(c, decode_status::truncated_link), mix.of(hostile_kind::zero_length));
  EXPECT_EQ(status_of(c, decode_status::truncated_ip), mix.of(hostile_kind::truncated));
  EXPECT_EQ(c.metered, mix.of(hostile_kind::ordinary) + mix.of(hostile_kind::first_fragment) +
                           mix.of(hostile_kind::orphan_fragment) + mix.of(hostile_kind::v6_ext_at_limit) +
                           mix.of(hostile_kind::tunnel_nest));
  EXPECT_EQ(c.fragments.first, mix.of(hostile_kind::first_fragment));
  EXPECT_EQ(c.fragments.orphans, mix.of(hostile_kind::orphan_fragment));
  EXPECT_EQ(c.fragments.resolved, 0u);
  // State: the table full and no bigger, the fragment cache at its size.
  EXPECT_EQ(engine.shard().table().size(), config.table.max_flows);
  EXPECT_EQ(engine.shard().table().memory_bytes(), memory);
  EXPECT_GT(c.table.evictions, 10000u) << "the flood did press on the table";
  EXPECT_EQ(engine.shard().fragments().capacity(), config.fragment_slots);
  EXPECT_EQ(engine.shard().fragments().remembered(), config.fragment_slots);

  engine.finish(out);
  out.flush();
  uint64_t in_records = 0;
  for (const flow_record& r : sink.records) in_records += r.fwd.packets + r.rev.packets;
  EXPECT_EQ(in_records, c.metered) << "every metered packet leaves in exactly one record";
}

// The same mix through the multi-core engine: the ledger balances at any
// shard count, and the records agree with one core (no eviction: room for
// every flow).
TEST(HostileMix, TheParallelLedgerBalances) {
  constexpr size_t kPackets = 30000;
  const hostile_mix mix = make_hostile_mix(kPackets, kT0);
  engine_config config = hostile_config();
  config.table.max_flows = 1u << 16;
  config.fragment_slots = 1u << 15;
  const run_result one = run_flow_engine(mix.views, config);
  for (const unsigned threads : {1u, 3u}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    parallel_config pc;
    pc.engine = config;
    pc.engine.table.max_flows = config.table.max_flows * threads;
    pc.threads = threads;
    collecting_sink sink;
    parallel_engine engine(pc, sink);
    span_source source(mix.views);
    engine.run(source);
    engine.finish();
    const drop_ledger l = engine.ledger();
    EXPECT_EQ(l.received, kPackets);
    EXPECT_EQ(l.received, l.decode_failed() + l.ring_dropped() + l.metered);
    EXPECT_TRUE(l.reconciles());
    EXPECT_EQ(l.metered, one.counters.metered);
    EXPECT_EQ(engine.counters().fragments.orphans, mix.of(hostile_kind::orphan_fragment));
    EXPECT_TRUE(same_records(sorted(std::move(sink.records)), one.records));
  }
}

}  // namespace
}  // namespace flower
