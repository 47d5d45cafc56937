// Hash seeding: the flow hash is keyed per run, so keys crafted to share one
// index bucket (or one shard) under a known seed spread out under another;
// records never depend on the seed. docs/flow-table.md, "Hash seeding".

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <vector>

#include "pipeline/flow_key.h"
#include "pipeline/flow_table.h"
#include "tests/hostile_traffic.h"

namespace flower {
namespace {

using namespace flower::test;

constexpr uint64_t kKnownSeed = 0x5eed;   // the seed the attacker built the flood against
constexpr uint64_t kOtherSeed = 0xc0ffee;  // the run's real seed

TEST(HashSeed, TheSeedChangesEveryHash) {
  flow_key k;
  const uint8_t a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};
  k.set_v4(k.addr_a, a);
  k.set_v4(k.addr_b, b);
  k.ip_version = 4;
  k.proto = 6;
  k.port_a = 1234;
  k.port_b = 80;
  const hash_key h1 = hash_key::from_seed(1), h2 = hash_key::from_seed(2);
  EXPECT_NE(key_hash(k, h1), key_hash(k, h2));
  EXPECT_NE(shard_hash(k, h1), shard_hash(k, h2));
  EXPECT_EQ(key_hash(k, h1), key_hash(k, hash_key::from_seed(1))) << "a given seed repeats a run";
  flow_key reversed = k;
  reversed.swap_endpoints();
  EXPECT_EQ(shard_hash(k, h1), shard_hash(reversed, h1)) << "both directions on one shard, for any seed";
}

TEST(HashSeed, EnginesReportTheSeedTheyUse) {
  engine_config given = hardening_config(42);
  EXPECT_EQ(flow_engine(given).hash_seed(), 42u);
  collecting_sink sink;
  parallel_config pc;
  pc.engine = given;
  pc.threads = 2;
  EXPECT_EQ(parallel_engine(pc, sink).hash_seed(), 42u);
  // Unset: drawn from the kernel for each engine (equal draws: 2^-64).
  engine_config drawn = hardening_config();
  drawn.hash_seed.reset();
  EXPECT_NE(flow_engine(drawn).hash_seed(), flow_engine(drawn).hash_seed());
  pc.engine = drawn;
  EXPECT_NE(parallel_engine(pc, sink).hash_seed(), parallel_engine(pc, sink).hash_seed());
}

TEST(HashSeed, RecordsDoNotDependOnTheSeed) {
  trace t = phased_traffic(20000);
  t.finish();
  const run_result a = run_flow_engine(t.views, hardening_config(kKnownSeed));
  const run_result b = run_flow_engine(t.views, hardening_config(kOtherSeed));
  EXPECT_EQ(a.records.size(), 1000u);  // 400 flows, each a record per busy phase
  EXPECT_TRUE(same_records(a.records, b.records));
  for (const unsigned threads : {2u, 4u}) {
    SCOPED_TRACE("threads " + std::to_string(threads));
    // The seed also picks each flow's shard: other flows share a table.
    const run_result pa = run_parallel(t.views, hardening_config(kKnownSeed), threads);
    const run_result pb = run_parallel(t.views, hardening_config(kOtherSeed), threads);
    EXPECT_TRUE(same_records(pa.records, a.records));
    EXPECT_TRUE(same_records(pb.records, a.records));
  }
}

flow_key tcp_key(uint32_t n) {
  flow_key k;
  const uint8_t src[4] = {10, static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  const uint8_t dst[4] = {192, 0, 2, 80};
  k.set_v4(k.addr_a, src);
  k.set_v4(k.addr_b, dst);
  k.ip_version = 4;
  k.proto = 6;
  k.port_a = static_cast<uint16_t>(1024 + n % 50000);
  k.port_b = 443;
  return k;
}

decoded_packet packet_of(const flow_key& k, uint64_t ts) {
  decoded_packet d;
  d.key = k;
  d.ts_ns = ts;
  d.ip_bytes = 40;
  d.frame_bytes = 54;
  d.tcp_flags = 0x10;
  return d;
}

// A hash flood: keys found by brute force to share one home bucket of a
// table keyed with kKnownSeed. Against that seed the flood works (every
// lookup probes hundreds of buckets); keyed with another seed the same
// keys spread like any others. Measured as probe lengths, not time.
TEST(HashSeed, AFloodBuiltAgainstOneSeedSpreadsUnderAnother) {
  flow_table_config cfg;
  cfg.max_flows = 4096;  // 1024 buckets
  cfg.huge_pages = false;
  cfg.idle_timeout_ns = 0;
  cfg.hash_seed = kKnownSeed;
  flow_table known(cfg, service_ports::defaults());
  cfg.hash_seed = kOtherSeed;
  flow_table other(cfg, service_ports::defaults());
  EXPECT_EQ(known.hash_seed(), kKnownSeed);

  constexpr size_t kFlood = 2000;
  const uint32_t target = known.bucket_of(tcp_key(0));
  std::vector<decoded_packet> flood;
  for (uint32_t n = 0; flood.size() < kFlood; ++n)
    if (known.bucket_of(tcp_key(n)) == target) flood.push_back(packet_of(tcp_key(n), kT0 + flood.size()));
  ASSERT_EQ(flood.size(), kFlood);

  collecting_sink sink;
  record_buffer out(sink);
  for (size_t i = 0; i < flood.size(); i += 256) {
    const auto part = std::span<const decoded_packet>(flood).subspan(i, std::min<size_t>(256, flood.size() - i));
    known.update(part, out);
    other.update(part, out);
  }
  ASSERT_EQ(known.size(), kFlood);
  ASSERT_EQ(other.size(), kFlood);
  const flow_table::probe_stats attacked = known.index_probes(), defended = other.index_probes();
  EXPECT_EQ(attacked.flows, kFlood);
  EXPECT_EQ(defended.flows, kFlood);
  // 8 slots a bucket: the flood fills kFlood / 8 buckets in a row.
  EXPECT_GE(attacked.longest_buckets, kFlood / 8 - 1);
  EXPECT_GT(attacked.total_buckets, kFlood * kFlood / 8 / 2 - kFlood);
  // Under another seed: 2000 flows in 1024 buckets of 8 hardly ever leave home.
  EXPECT_LE(defended.longest_buckets, 2u);
  EXPECT_LE(defended.total_buckets, kFlood / 50);

  // Lookups (packets of the existing flows) and deletes still find every flow.
  for (decoded_packet& d : flood) d.ts_ns += 1000;
  known.update(flood, out);
  other.update(flood, out);
  EXPECT_EQ(known.size(), kFlood);
  EXPECT_EQ(other.size(), kFlood);
  known.flush(end_reason::shutdown, out);
  other.flush(end_reason::shutdown, out);
  out.flush();
  EXPECT_EQ(sink.records.size(), 2 * kFlood);
  for (const flow_record& r : sink.records) EXPECT_EQ(r.fwd.packets + r.rev.packets, 2u);
}

// The shard choice is keyed too: flows aimed at one shard under a known
// seed spread over all shards under another.
TEST(HashSeed, AShardFloodBuiltAgainstOneSeedSpreadsUnderAnother) {
  constexpr unsigned kShards = 4;
  const hash_key known = hash_key::from_seed(kKnownSeed), other = hash_key::from_seed(kOtherSeed);
  const auto shard_of = [](const flow_key& k, const hash_key& h) {
    return static_cast<unsigned>(((shard_hash(k, h) >> 32) * kShards) >> 32);  // as the dispatcher scales it
  };
  std::array<unsigned, kShards> spread{};
  unsigned aimed = 0;
  for (uint32_t n = 0; aimed < 4000; ++n) {
    const flow_key k = tcp_key(n * 7919);
    if (shard_of(k, known) != 0) continue;
    ++aimed;
    ++spread[shard_of(k, other)];
  }
  for (unsigned s = 0; s < kShards; ++s) EXPECT_GT(spread[s], 800u) << "shard " << s;
}

}  // namespace
}  // namespace flower
