// Time jumps: one packet stamped far ahead of the recent packets must not
// move a shard's clock (it would sweep every live flow out as idle and then
// stall expiry until packet time caught up); it is metered and counted in
// engine_counters::time_jumps. A real step of the clock (a pause in a
// capture) still moves it. docs/flow-table.md, "Time jumps".

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "pipeline/detail/clock_guard.h"
#include "tests/hostile_traffic.h"

namespace flower {
namespace {

using detail::clock_guard;
using detail::kTimeJumpNs;
using detail::kTimeStepPackets;
using namespace flower::test;

constexpr uint64_t kSecond = 1'000'000'000ull;
constexpr uint64_t kTenYears = 10 * 365 * 24 * 3600 * kSecond;

void feed(clock_guard& g, std::initializer_list<uint64_t> times) {
  for (uint64_t t : times) g.observe(t);
}

TEST(ClockGuard, FollowsPlausibleTimesAndIgnoresOneFarStamp) {
  clock_guard g;
  feed(g, {kT0, kT0 + 1, kT0 + 2, kT0 + 3});  // the first packets: a step from "unset"
  EXPECT_EQ(g.now_ns(), kT0 + 2);              // the second newest of them
  feed(g, {kT0 + kSecond / 2, kT0 + kSecond});
  EXPECT_EQ(g.now_ns(), kT0 + kSecond);
  g.observe(kT0 + kTenYears);  // forged
  EXPECT_EQ(g.now_ns(), kT0 + kSecond);
  EXPECT_EQ(g.jumps(), 0u) << "not yet known to be a jump";
  g.observe(kT0 + kSecond + 5);  // the next packet is back at the old time
  EXPECT_EQ(g.now_ns(), kT0 + kSecond + 5);
  EXPECT_EQ(g.jumps(), 1u);
  g.observe(kT0);  // an older packet never moves the clock back
  EXPECT_EQ(g.now_ns(), kT0 + kSecond + 5);
}

TEST(ClockGuard, SeveralFarPacketsInARowAreARealStep) {
  clock_guard g;
  feed(g, {kT0, kT0, kT0, kT0});
  const uint64_t later = kT0 + 3600 * kSecond;  // a capture paused for an hour
  for (uint32_t i = 0; i + 1 < kTimeStepPackets; ++i) g.observe(later + i);
  EXPECT_EQ(g.now_ns(), kT0) << "not a step yet";
  g.observe(later + 1000);
  EXPECT_EQ(g.now_ns(), later + kTimeStepPackets - 2) << "the second newest of the run";
  EXPECT_EQ(g.jumps(), 0u);
  // One forged stamp inside the run cannot carry the clock along.
  feed(g, {later + 2 * 3600 * kSecond, later + kTenYears, later + 2 * 3600 * kSecond + 1,
           later + 2 * 3600 * kSecond + 2});
  EXPECT_EQ(g.now_ns(), later + 2 * 3600 * kSecond + 2);
}

TEST(ClockGuard, EndOfInputSettlesThePendingRun) {
  clock_guard lone;
  feed(lone, {kT0, kT0, kT0, kT0, kT0 + kTenYears});
  lone.finish();
  EXPECT_EQ(lone.now_ns(), kT0);
  EXPECT_EQ(lone.jumps(), 1u);

  clock_guard pair;
  feed(pair, {kT0, kT0, kT0, kT0, kT0 + 100 * kSecond, kT0 + 101 * kSecond});
  pair.finish();
  EXPECT_EQ(pair.now_ns(), kT0 + 100 * kSecond);
  EXPECT_EQ(pair.jumps(), 0u);

  clock_guard few;  // fewer packets than a step: their newest time is all there is
  feed(few, {kT0, kT0 + 40 * kSecond});
  few.finish();
  EXPECT_EQ(few.now_ns(), kT0 + 40 * kSecond);
}

TEST(ClockGuard, ATickIsTrustedAndCatchesUpWithARun) {
  clock_guard g;
  feed(g, {kT0, kT0, kT0, kT0, kT0 + 30 * kSecond});
  g.tick(kT0 + 30 * kSecond);  // the wall clock agrees with the far packet
  EXPECT_EQ(g.now_ns(), kT0 + 30 * kSecond);
  g.observe(kT0 + 30 * kSecond + 1);
  EXPECT_EQ(g.jumps(), 0u);
  EXPECT_TRUE(g.plausible(kT0 + 30 * kSecond + kTimeJumpNs));
  EXPECT_FALSE(g.plausible(kT0 + 30 * kSecond + 1 + kTimeJumpNs + 1));
}

// The phased traffic with one forged packet of its own flow in the middle.
constexpr uint32_t kForgedSrc = 0xc0000201, kForgedDst = 0xc0000202;  // 192.0.2.1 -> 192.0.2.2

trace with_forged_packet(size_t packets, size_t at, uint64_t forged_ts) {
  trace clean = phased_traffic(packets);
  trace t;
  for (size_t i = 0; i < packets; ++i) {
    if (i == at) t.add(udp4_frame(kForgedSrc, 9, kForgedDst, 9), forged_ts);
    t.add(clean.frames[i], clean.times[i]);
  }
  t.finish();
  return t;
}

bool is_forged_flow(const flow_record& r) {
  flow_key k = r.key;
  k.canonicalize();
  flow_key f;
  const uint8_t a[4] = {192, 0, 2, 1}, b[4] = {192, 0, 2, 2};
  f.set_v4(f.addr_a, a);
  f.set_v4(f.addr_b, b);
  return k.addr_a == f.addr_a && k.addr_b == f.addr_b && k.proto == 17;
}

std::vector<flow_record> without_forged(const std::vector<flow_record>& records) {
  std::vector<flow_record> out;
  for (const flow_record& r : records)
    if (!is_forged_flow(r)) out.push_back(r);
  return out;
}

TEST(TimeJump, OneFarFuturePacketLeavesEveryOtherRecordAsItWas) {
  constexpr size_t kPackets = 20000, kAt = 9001;
  trace clean = phased_traffic(kPackets);
  clean.finish();
  const trace forged = with_forged_packet(kPackets, kAt, clean.times[kAt] + kTenYears);
  const engine_config config = hardening_config();

  const run_result base = run_flow_engine(clean.views, config);
  // The check has teeth: many flows are live across the forged packet, and
  // a clock that followed it would have ended every one of them there.
  const uint64_t at_ns = clean.times[kAt];
  const auto spanning = std::count_if(base.records.begin(), base.records.end(),
                                      [&](const flow_record& r) { return r.first_ns < at_ns && r.last_ns > at_ns; });
  EXPECT_GT(spanning, 50);
  EXPECT_GT(base.counters.table.by_reason[static_cast<size_t>(end_reason::idle)], 500u);

  for (const size_t batch : {size_t{1}, size_t{7}, size_t{256}}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    const run_result got = run_flow_engine(forged.views, config, batch);
    EXPECT_TRUE(same_records(without_forged(got.records), base.records));
    EXPECT_EQ(got.records.size(), base.records.size() + 1) << "the forged packet is metered in a flow of its own";
    EXPECT_EQ(got.counters.time_jumps, 1u);
    EXPECT_EQ(got.counters.metered, kPackets + 1);
  }
  EXPECT_EQ(base.counters.time_jumps, 0u);
}

TEST(TimeJump, RecordsDoNotDependOnTheThreadCount) {
  constexpr size_t kPackets = 20000;
  trace clean = phased_traffic(kPackets);
  clean.finish();
  const engine_config config = hardening_config();
  const run_result base = run_flow_engine(clean.views, config);
  // Forged packets early, in the middle and as the very last packet.
  for (const size_t at : {size_t{500}, size_t{12345}, kPackets}) {
    SCOPED_TRACE("forged packet at " + std::to_string(at));
    const uint64_t forged_ts = clean.times[std::min(at, kPackets - 1)] + kTenYears;
    trace copy = with_forged_packet(kPackets, at, forged_ts);
    if (at == kPackets) copy.add(udp4_frame(kForgedSrc, 9, kForgedDst, 9), forged_ts);  // after the last
    copy.finish();
    const run_result one = run_flow_engine(copy.views, config);
    EXPECT_TRUE(same_records(without_forged(one.records), base.records));
    for (const unsigned threads : {1u, 2u, 4u}) {
      SCOPED_TRACE("threads " + std::to_string(threads));
      const run_result par = run_parallel(copy.views, config, threads);
      EXPECT_TRUE(same_records(par.records, one.records));
      EXPECT_EQ(par.counters.metered, kPackets + 1);
      EXPECT_EQ(par.counters.time_jumps, 1u);
    }
  }
}

TEST(TimeJump, APauseInTheCaptureStillExpiresTheFlowsBeforeIt) {
  // 4000 packets, an hour of silence, 4000 more over other flows: the
  // clock steps, and the flows from before the pause leave the table as
  // soon as the packets after it have shown the step is real.
  trace before = phased_traffic(4000, 1);
  trace t;
  for (size_t i = 0; i < 4000; ++i) t.add(before.frames[i], before.times[i]);
  const uint64_t resume = before.times.back() + 3600 * kSecond;
  for (size_t i = 0; i < 4000; ++i) t.add(udp4_frame(0x0b000000u | uint32_t(i % 50), 4000, 0x0b640001u, 53), resume + i * 5'000'000ull);
  t.finish();
  const engine_config config = hardening_config();
  flow_engine engine(config);
  collecting_sink sink;
  record_buffer out(sink);
  engine.process(std::span<const packet_view>(t.views).first(4000), out);
  const size_t live_before = engine.shard().table().size();
  EXPECT_GT(live_before, 50u);
  engine.process(std::span<const packet_view>(t.views).subspan(4000), out);
  EXPECT_EQ(engine.shard().table().size(), 50u) << "only the flows after the pause are left";
  EXPECT_GE(engine.shard().now_ns(), resume);
  EXPECT_EQ(engine.counters().time_jumps, 0u);
  engine.finish(out);
  out.flush();
  for (const flow_record& r : sink.records) {
    if (r.last_ns < resume) {
      EXPECT_EQ(r.reason, end_reason::idle);
    }
  }
}

}  // namespace
}  // namespace flower
