// Decode (+ meter) throughput with 64-byte Ethernet/IPv4/UDP frames, either
// direction, flows chosen uniformly at random, batches of 256: decode_packet
// alone, and the whole one-core engine (decode + fragment check + flow table
// + expiry) at 1k, 10k and 1M concurrent flows, with the frames in two
// places:
// - BM_DecodeAndUpdate: 1M frames in one 64 MiB array, so every frame and
//   its view come from DRAM (a pcap file mapped from the page cache);
// - BM_DecodeAndUpdateRing: each batch's frames are written into a capture
//   ring shaped like the sensor's UMEM (4096 frames of 2 KiB) just before
//   the engine takes them, as copy-mode AF_XDP or a NIC that writes into the
//   cache (DDIO) leaves them. Only engine.process() is timed.
//
//   build-*/bench/bench_decode

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "pipeline/decode.h"
#include "pipeline/flow_engine.h"
#include "traffic/huge_page_allocator.h"

namespace flower {
namespace {

constexpr size_t kBatch = 256;
constexpr size_t kPackets = size_t{1} << 20;
constexpr size_t kFrame = 64;  // 60 bytes + FCS on the wire; 64 captured here
constexpr uint64_t kT0 = 1'700'000'000'000'000'000ull;

struct null_sink : record_sink {
  size_t records = 0;
  void consume(std::span<const flow_record> r) override { records += r.size(); }
};

// Flow f: 10.x.y.z:(1024 + f % 60000) <-> 192.168.0.1:4433 over UDP.
void write_frame(uint8_t* f, uint32_t flow, bool reverse) {
  static const uint8_t kTemplate[42] = {
      0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00,      // Ethernet
      0x45, 0, 0, 50, 0, 0, 0x40, 0, 64, 17, 0, 0,              // IPv4, total length 50, DF
      0, 0, 0, 0, 0, 0, 0, 0,                                    // addresses
      0, 0, 0, 0, 0, 30, 0, 0};                                  // UDP, length 30
  std::memcpy(f, kTemplate, sizeof kTemplate);
  std::memset(f + sizeof kTemplate, 0xab, kFrame - sizeof kTemplate);
  const uint8_t client[4] = {10, static_cast<uint8_t>(flow >> 16), static_cast<uint8_t>(flow >> 8), static_cast<uint8_t>(flow)};
  const uint8_t server[4] = {192, 168, 0, 1};
  const uint16_t cport = static_cast<uint16_t>(1024 + flow % 60000), sport = 4433;
  std::memcpy(f + 26, reverse ? server : client, 4);
  std::memcpy(f + 30, reverse ? client : server, 4);
  const uint16_t p0 = reverse ? sport : cport, p1 = reverse ? cport : sport;
  f[34] = static_cast<uint8_t>(p0 >> 8);
  f[35] = static_cast<uint8_t>(p0);
  f[36] = static_cast<uint8_t>(p1 >> 8);
  f[37] = static_cast<uint8_t>(p1);
}

// On 2 MiB pages, as flower-bench's traffic and a UMEM are: on 4 KiB pages a
// TLB miss every 64 frames would be measured too.
struct frame_set {
  std::vector<uint8_t, huge_page_allocator<uint8_t>> bytes;
  std::vector<packet_view, huge_page_allocator<packet_view>> views;
};

frame_set random_frames(uint32_t flows) {
  frame_set s;
  s.bytes.resize(kPackets * kFrame);
  s.views.resize(kPackets);
  std::mt19937_64 rng(7);
  for (size_t i = 0; i < kPackets; ++i) {
    uint8_t* f = s.bytes.data() + i * kFrame;
    write_frame(f, static_cast<uint32_t>(rng() % flows), (rng() & 1) != 0);
    s.views[i] = packet_view{f, kFrame, kFrame, kT0 + i * 10, link_type::ethernet};
  }
  return s;
}

// The engine after every flow has been seen once, so the timed loop is
// steady state.
std::unique_ptr<flow_engine> warmed_engine(uint32_t flows, record_buffer& out) {
  engine_config cfg;
  cfg.table.max_flows = flows + flows / 4;
  auto engine = std::make_unique<flow_engine>(cfg);
  std::vector<uint8_t> bytes(kBatch * kFrame);
  std::vector<packet_view> views(kBatch);
  for (uint32_t base = 0; base < flows; base += kBatch) {
    const uint32_t n = std::min<uint32_t>(kBatch, flows - base);
    for (uint32_t i = 0; i < n; ++i) {
      write_frame(bytes.data() + i * kFrame, base + i, false);
      views[i] = packet_view{bytes.data() + i * kFrame, kFrame, kFrame, kT0, link_type::ethernet};
    }
    engine->process({views.data(), n}, out);
  }
  return engine;
}

// After the timed loop: every packet metered, every flow still there.
void report(benchmark::State& state, const flow_engine& engine, record_buffer& out, uint32_t flows,
            const char* frames) {
  out.flush();
  const engine_counters c = engine.counters();
  if (c.metered != c.received || engine.shard().table().size() != flows) state.SkipWithError("packets not metered");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  state.SetLabel(std::to_string(flows) + " flows, 64-byte frames " + frames + ", one core");
}

void BM_Decode(benchmark::State& state) {
  const frame_set s = random_frames(10'000);
  decode_options opt;
  std::vector<decoded_packet> out(kBatch);
  size_t pos = 0, ok = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < kBatch; ++i) ok += decode_packet(s.views[pos + i], opt, out[i]) == decode_status::ok;
    benchmark::DoNotOptimize(out.data());
    pos += kBatch;
    if (pos + kBatch > kPackets) pos = 0;
  }
  if (ok != state.iterations() * kBatch) state.SkipWithError("frames did not decode");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  state.SetLabel("64-byte Ethernet/IPv4/UDP");
}
BENCHMARK(BM_Decode);

void BM_DecodeAndUpdate(benchmark::State& state) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  null_sink sink;
  record_buffer out(sink);
  const auto engine = warmed_engine(flows, out);
  const frame_set s = random_frames(flows);
  size_t pos = 0;
  for (auto _ : state) {
    engine->process({s.views.data() + pos, kBatch}, out);
    pos += kBatch;
    if (pos + kBatch > kPackets) pos = 0;
  }
  report(state, *engine, out, flows, "from DRAM");
}
BENCHMARK(BM_DecodeAndUpdate)->Arg(1000)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMicrosecond);

void BM_DecodeAndUpdateRing(benchmark::State& state) {
  constexpr size_t kRingFrames = 4096, kChunk = 2048;  // xdp_source_config defaults
  const auto flows = static_cast<uint32_t>(state.range(0));
  null_sink sink;
  record_buffer out(sink);
  const auto engine = warmed_engine(flows, out);
  std::vector<std::pair<uint32_t, bool>> traffic(kPackets);  // (flow, reverse), drawn up front
  std::mt19937_64 rng(7);
  for (auto& t : traffic) t = {static_cast<uint32_t>(rng() % flows), (rng() & 1) != 0};
  // On 2 MiB pages, as xdp_source maps its UMEM.
  std::vector<uint8_t, huge_page_allocator<uint8_t>> ring(kRingFrames * kChunk);
  std::vector<packet_view> views(kBatch);
  size_t pos = 0, slot = 0;
  uint64_t ts = kT0;
  for (auto _ : state) {
    for (size_t i = 0; i < kBatch; ++i) {  // the "NIC": not timed
      uint8_t* f = ring.data() + ((slot + i) % kRingFrames) * kChunk;
      write_frame(f, traffic[pos + i].first, traffic[pos + i].second);
      views[i] = packet_view{f, kFrame, kFrame, ts += 10, link_type::ethernet};
    }
    const auto start = std::chrono::steady_clock::now();
    engine->process({views.data(), kBatch}, out);
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    slot = (slot + kBatch) % kRingFrames;
    pos += kBatch;
    if (pos + kBatch > kPackets) pos = 0;
  }
  report(state, *engine, out, flows, "in a capture ring");
}
BENCHMARK(BM_DecodeAndUpdateRing)->Arg(1000)->Arg(10'000)->Arg(1'000'000)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace flower
