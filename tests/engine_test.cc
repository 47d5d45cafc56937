// flow_shard / flow_engine: fragments resolved before metering, expiry by the
// batch's newest time, shutdown export, and the packet conservation identity.

#include "pipeline/flow_engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

namespace flower {
namespace {

constexpr uint64_t T0 = 1'700'000'000'000'000'000ull;

struct collecting_sink : record_sink {
  std::vector<flow_record> records;
  void consume(std::span<const flow_record> r) override { records.insert(records.end(), r.begin(), r.end()); }
};

engine_config small_config() {
  engine_config c;
  c.table.max_flows = 4096;
  c.table.huge_pages = false;
  return c;
}

decoded_packet udp4(uint8_t src, uint16_t sport, uint8_t dst, uint16_t dport, uint64_t ts) {
  decoded_packet d;
  const uint8_t s[4] = {10, 0, 0, src}, t[4] = {10, 0, 0, dst};
  d.key.set_v4(d.key.addr_a, s);
  d.key.set_v4(d.key.addr_b, t);
  d.key.ip_version = 4;
  d.key.proto = 17;
  d.key.port_a = sport;
  d.key.port_b = dport;
  d.ts_ns = ts;
  d.ip_bytes = 1500;
  d.frame_bytes = 1514;
  return d;
}

TEST(FlowShard, FragmentsLandInTheirDatagramsFlow) {
  flow_shard shard(small_config());
  collecting_sink sink;
  record_buffer out(sink);
  std::vector<decoded_packet> batch{udp4(1, 5000, 2, 6000, T0), udp4(1, 0, 2, 0, T0 + 1), udp4(1, 0, 2, 0, T0 + 2)};
  batch[0].frag = fragment_kind::first;
  batch[1].frag = fragment_kind::later;
  batch[0].frag_id = batch[1].frag_id = 42;
  batch[2].frag = fragment_kind::later;  // orphan: id never seen
  batch[2].frag_id = 43;
  shard.process(batch, out);
  shard.finish(out);
  out.flush();
  ASSERT_EQ(sink.records.size(), 2u);
  uint64_t datagram_packets = 0, orphan_packets = 0;
  for (auto& r : sink.records) (r.key.port_a == 5000 ? datagram_packets : orphan_packets) += r.fwd.packets;
  EXPECT_EQ(datagram_packets, 2u);
  EXPECT_EQ(orphan_packets, 1u);
  EXPECT_EQ(shard.fragments().counters().resolved, 1u);
  EXPECT_EQ(shard.fragments().counters().orphans, 1u);
}

TEST(FlowShard, ExpiresByTheNewestPacketTime) {
  flow_shard shard(small_config());  // idle 30 s
  collecting_sink sink;
  record_buffer out(sink);
  std::vector<decoded_packet> first{udp4(1, 5000, 2, 6000, T0)};
  shard.process(first, out);
  // The clock steps 40 s: several packets agree on it (one alone would be
  // a time jump, which does not move the clock; see time_jump_test.cc).
  std::vector<decoded_packet> later;
  for (uint64_t i = 0; i < detail::kTimeStepPackets; ++i)
    later.push_back(udp4(3, 5000, 4, 6000, T0 + 40'000'000'000ull + i * 1000));
  shard.process(later, out);
  out.flush();
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].reason, end_reason::idle);
  shard.tick(T0 + 80'000'000'000ull, out);
  out.flush();
  EXPECT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(shard.table().size(), 0u);
}

TEST(EngineCounters, CategoriesSumTheirStatuses) {
  engine_counters c;
  c.status[static_cast<size_t>(decode_status::truncated_ip)] = 3;
  c.status[static_cast<size_t>(decode_status::vlan_depth)] = 2;
  c.status[static_cast<size_t>(decode_status::non_ip)] = 5;
  c.status[static_cast<size_t>(decode_status::unknown_link_type)] = 1;
  c.status[static_cast<size_t>(decode_status::ok)] = 100;
  EXPECT_EQ(c.malformed(), 5u);
  EXPECT_EQ(c.unsupported(), 6u);
  engine_counters sum;
  sum += c;
  sum += c;
  EXPECT_EQ(sum.malformed(), 10u);
  EXPECT_EQ(sum.status[0], 200u);
}

// Frames through the real decoder: Ethernet/IPv4/UDP, ARP, a cut frame.
std::vector<uint8_t> udp_frame(uint8_t src_host, uint16_t sport) {
  std::vector<uint8_t> f = {
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00,                       // Ethernet, IPv4
      0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, src_host, 10, 0, 0, 100,  // IPv4, 28 bytes
      static_cast<uint8_t>(sport >> 8), static_cast<uint8_t>(sport), 0x1f, 0x90, 0, 8, 0, 0};  // UDP -> 8080
  f.resize(60, 0);
  return f;
}

TEST(FlowEngine, ConservesEveryPacket) {
  flow_engine engine(small_config());
  collecting_sink sink;
  record_buffer out(sink);
  std::vector<std::vector<uint8_t>> frames;
  for (uint8_t h = 1; h <= 3; ++h) frames.push_back(udp_frame(h, 40000));
  frames.push_back(udp_frame(1, 40000));
  std::vector<uint8_t> arp(60, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  frames.push_back(arp);
  std::vector<uint8_t> cut = udp_frame(1, 1);
  cut.resize(20);  // cut inside the IPv4 header
  frames.push_back(cut);
  std::vector<packet_view> views;
  for (size_t i = 0; i < frames.size(); ++i)
    views.push_back({frames[i].data(), static_cast<uint32_t>(frames[i].size()), static_cast<uint32_t>(frames[i].size()),
                     T0 + i, link_type::ethernet});
  engine.process(views, out);
  engine.finish(out);
  out.flush();
  const engine_counters c = engine.counters();
  EXPECT_EQ(c.received, 6u);
  EXPECT_EQ(c.metered, 4u);
  EXPECT_EQ(c.unsupported(), 1u);
  EXPECT_EQ(c.malformed(), 1u);
  EXPECT_EQ(c.received, c.metered + c.malformed() + c.unsupported());
  EXPECT_EQ(c.table.packets, 4u);
  ASSERT_EQ(sink.records.size(), 3u);
  uint64_t packets = 0;
  for (auto& r : sink.records) {
    packets += r.fwd.packets + r.rev.packets;
    EXPECT_EQ(r.reason, end_reason::shutdown);
    EXPECT_EQ(r.fwd.bytes % 28, 0u);
    EXPECT_EQ(r.fwd.frame_bytes % 60, 0u);
  }
  EXPECT_EQ(packets, 4u);
}

TEST(FlowEngine, LargeInputIsChunked) {
  flow_engine engine(small_config());
  collecting_sink sink;
  record_buffer out(sink);
  std::vector<std::vector<uint8_t>> frames;
  for (int i = 0; i < 1000; ++i) frames.push_back(udp_frame(static_cast<uint8_t>(1 + i % 50), static_cast<uint16_t>(40000 + i % 7)));
  std::vector<packet_view> views;
  for (size_t i = 0; i < frames.size(); ++i)
    views.push_back({frames[i].data(), 60, 60, T0 + i, link_type::ethernet});
  engine.process(views, out);
  engine.finish(out);
  out.flush();
  EXPECT_EQ(engine.counters().metered, 1000u);
  EXPECT_EQ(sink.records.size(), 350u);  // 50 hosts x 7 ports (lcm 350)
}

// Ethernet + IPv4 (protocol UDP) from 10.0.0.src_host to 10.0.0.100 with
// the given id and flags/offset field, and `payload` after the header.
std::vector<uint8_t> ipv4_frame(uint8_t src_host, uint16_t id, uint16_t flags_offset, const std::vector<uint8_t>& payload) {
  const size_t total = 20 + payload.size();
  std::vector<uint8_t> f(std::max<size_t>(60, 14 + total), 0);
  for (uint8_t i = 0; i < 12; ++i) f[i] = i;  // MAC addresses
  f[12] = 0x08;                               // IPv4
  f[14] = 0x45;
  f[16] = static_cast<uint8_t>(total >> 8);
  f[17] = static_cast<uint8_t>(total);
  f[18] = static_cast<uint8_t>(id >> 8);
  f[19] = static_cast<uint8_t>(id);
  f[20] = static_cast<uint8_t>(flags_offset >> 8);
  f[21] = static_cast<uint8_t>(flags_offset);
  f[22] = 64;  // TTL
  f[23] = 17;  // UDP
  f[26] = 10, f[29] = src_host;
  f[30] = 10, f[33] = 100;
  std::copy(payload.begin(), payload.end(), f.begin() + 34);
  return f;
}

// flow_shard::process_frames (decoding inside the table's pipeline, and
// handing the rest of a batch to process() at the first fragment) must
// give exactly what decode_batch + process gives: the same records and the
// same counters, whatever the batch size and wherever fragments, frames
// that do not decode and batch boundaries fall.
TEST(FlowShard, ProcessFramesMatchesDecodeThenProcess) {
  std::vector<std::vector<uint8_t>> frames;
  uint64_t rng = 12345;
  const auto next_random = [&] { return rng = rng * 6364136223846793005ull + 1442695040888963407ull, rng >> 33; };
  uint16_t next_id = 1;
  std::vector<std::pair<uint8_t, uint16_t>> open_datagrams;  // (host, id) whose first fragment was sent
  for (int i = 0; i < 3000; ++i) {
    const uint64_t r = next_random() % 100;
    const auto host = static_cast<uint8_t>(1 + next_random() % 40);
    const auto port = static_cast<uint16_t>(40000 + next_random() % 5);
    if (r < 70) {
      frames.push_back(udp_frame(host, port));
    } else if (r < 80) {  // first fragment: the UDP header, more to come
      const uint16_t id = next_id++;
      std::vector<uint8_t> udp = {static_cast<uint8_t>(port >> 8), static_cast<uint8_t>(port), 0x1f, 0x90, 0, 40, 0, 0};
      udp.resize(24, 0xab);
      frames.push_back(ipv4_frame(host, id, 0x2000, udp));
      open_datagrams.emplace_back(host, id);
    } else if (r < 88 && !open_datagrams.empty()) {  // a later fragment of an open datagram
      const auto [h, id] = open_datagrams[next_random() % open_datagrams.size()];
      frames.push_back(ipv4_frame(h, id, 3, std::vector<uint8_t>(16, 0xcd)));
    } else if (r < 92) {  // an orphan: its first fragment never came
      frames.push_back(ipv4_frame(host, static_cast<uint16_t>(60000 + next_random() % 100), 3, std::vector<uint8_t>(16, 0xcd)));
    } else if (r < 96) {
      std::vector<uint8_t> arp(60, 0);
      arp[12] = 0x08;
      arp[13] = 0x06;
      frames.push_back(arp);
    } else {
      std::vector<uint8_t> cut = udp_frame(host, port);
      cut.resize(20 + next_random() % 20);  // inside the IPv4 or UDP header
      frames.push_back(cut);
    }
  }
  std::vector<packet_view> views;
  for (size_t i = 0; i < frames.size(); ++i)
    views.push_back({frames[i].data(), static_cast<uint32_t>(frames[i].size()), static_cast<uint32_t>(frames[i].size()),
                     T0 + i * 1000, link_type::ethernet});

  struct outcome {
    std::vector<flow_record> records;
    std::array<uint64_t, kDecodeStatusCount> status{};
    fragment_counters fragments;
    flow_table_counters table;
  };
  const auto run = [&](size_t batch, bool fused) {
    engine_config config = small_config();
    config.table.idle_timeout_ns = 200'000;  // packet time 1 us apart: flows also go idle and split
    flow_shard shard(config);
    collecting_sink sink;
    record_buffer out(sink);
    outcome o;
    std::vector<decoded_packet> scratch(batch);
    for (size_t i = 0; i < views.size(); i += batch) {
      const packet_batch part = std::span<const packet_view>(views).subspan(i, std::min(batch, views.size() - i));
      if (fused) {
        shard.process_frames(part, decode_options{}, o.status, scratch.data(), out);
      } else {
        bool fragment_work;
        const size_t n = decode_batch(part, decode_options{}, scratch.data(), o.status, fragment_work);
        shard.process({scratch.data(), n}, fragment_work, out);
      }
    }
    shard.finish(out);
    out.flush();
    o.records = std::move(sink.records);
    std::sort(o.records.begin(), o.records.end(), [](const flow_record& x, const flow_record& y) {
      return std::tie(x.first_ns, x.key.port_a, x.key.addr_a, x.last_ns) < std::tie(y.first_ns, y.key.port_a, y.key.addr_a, y.last_ns);
    });
    o.fragments = shard.fragments().counters();
    o.table = shard.table().counters();
    return o;
  };
  const auto fields = [](const flow_record& r) {
    return std::tie(r.key, r.fwd.packets, r.fwd.bytes, r.fwd.frame_bytes, r.fwd.tcp_flags, r.rev.packets, r.rev.bytes,
                    r.rev.frame_bytes, r.first_ns, r.last_ns, r.reason);
  };
  for (const size_t batch : {size_t{1}, size_t{7}, size_t{16}, size_t{17}, size_t{33}, size_t{100}, size_t{256}}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    const outcome fused = run(batch, true), plain = run(batch, false);
    EXPECT_EQ(fused.status, plain.status);
    EXPECT_GT(plain.fragments.resolved, 100u);  // the traffic exercises the fragment hand-over
    EXPECT_GT(plain.fragments.orphans, 50u);
    EXPECT_EQ(fused.fragments.first, plain.fragments.first);
    EXPECT_EQ(fused.fragments.resolved, plain.fragments.resolved);
    EXPECT_EQ(fused.fragments.orphans, plain.fragments.orphans);
    EXPECT_EQ(fused.table.packets, plain.table.packets);
    EXPECT_EQ(fused.table.flows_created, plain.table.flows_created);
    EXPECT_EQ(fused.table.records_exported, plain.table.records_exported);
    ASSERT_EQ(fused.records.size(), plain.records.size());
    size_t differ = 0;
    for (size_t i = 0; i < fused.records.size(); ++i) differ += fields(fused.records[i]) != fields(plain.records[i]);
    EXPECT_EQ(differ, 0u);
    uint64_t metered = 0;
    for (const flow_record& r : fused.records) metered += r.fwd.packets + r.rev.packets;
    EXPECT_EQ(metered, fused.status[static_cast<size_t>(decode_status::ok)]);  // every metered packet is in a record
  }
}

}  // namespace
}  // namespace flower
