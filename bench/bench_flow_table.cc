// Flow-table update throughput at 1k .. 10M concurrent flows: pre-built
// decoded packets choose a flow uniformly at random (either direction), fed
// in batches of 256 into a table that already holds every flow (steady
// state: lookups and updates, no inserts). Memory latency is the bound once
// the table outgrows the caches.
//
//   build-*/bench/bench_flow_table --benchmark_filter=Update

#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "pipeline/flow_table.h"

namespace flower {
namespace {

constexpr size_t kBatch = 256;
// Pre-built packets per run: enough that a cycle through them touches most
// flows of a large table (a short array would keep its few flows in cache),
// small for small tables so the input itself stays cached.
size_t packet_count(uint32_t flows) { return flows <= 10'000 ? size_t{1} << 16 : size_t{1} << 22; }

struct null_sink : record_sink {
  size_t records = 0;
  void consume(std::span<const flow_record> r) override { records += r.size(); }
};

// Flow i: 10.x.y.z:(1024 + i % 60000) <-> 192.168.0.1:443, x.y.z = i.
decoded_packet packet_of(uint32_t flow, bool reverse, uint64_t ts) {
  decoded_packet d;
  const uint8_t client[4] = {10, static_cast<uint8_t>(flow >> 16), static_cast<uint8_t>(flow >> 8), static_cast<uint8_t>(flow)};
  const uint8_t server[4] = {192, 168, 0, 1};
  d.key.set_v4(d.key.addr_a, client);
  d.key.set_v4(d.key.addr_b, server);
  d.key.ip_version = 4;
  d.key.proto = 6;
  d.key.port_a = static_cast<uint16_t>(1024 + flow % 60000);
  d.key.port_b = 443;
  d.tcp_flags = 0x10;
  if (reverse) d.key.swap_endpoints();
  d.ts_ns = ts;
  d.ip_bytes = 46;
  d.frame_bytes = 64;
  return d;
}

void BM_FlowTableUpdate(benchmark::State& state) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  flow_table_config cfg;
  cfg.max_flows = flows + flows / 4;  // 80 % full
  cfg.idle_timeout_ns = 0;
  cfg.active_timeout_ns = 0;
  flow_table table(cfg, service_ports::defaults());
  null_sink sink;
  record_buffer out(sink);

  const uint64_t t0 = 1'700'000'000'000'000'000ull;
  {  // insert every flow once
    std::vector<decoded_packet> batch;
    batch.reserve(kBatch);
    for (uint32_t f = 0; f < flows; ++f) {
      batch.push_back(packet_of(f, false, t0));
      if (batch.size() == kBatch || f + 1 == flows) {
        table.update(batch, out);
        batch.clear();
      }
    }
  }
  std::mt19937_64 rng(1);
  const size_t count = packet_count(flows);
  std::vector<decoded_packet> packets;
  packets.reserve(count);
  for (size_t i = 0; i < count; ++i)
    packets.push_back(packet_of(static_cast<uint32_t>(rng() % flows), (rng() & 1) != 0, t0 + i));

  size_t pos = 0;
  for (auto _ : state) {
    table.update(std::span<const decoded_packet>(packets.data() + pos, kBatch), out);
    pos += kBatch;
    if (pos + kBatch > count) pos = 0;
  }
  out.flush();
  if (table.size() != flows || sink.records != 0) state.SkipWithError("table lost or exported flows");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  state.SetLabel(std::to_string(flows) + " flows, " + std::to_string(table.memory_bytes() >> 20) + " MiB, batch 256");
}

BENCHMARK(BM_FlowTableUpdate)->Arg(1'000)->Arg(10'000)->Arg(1'000'000)->Arg(10'000'000)->Unit(benchmark::kMicrosecond);

// New-flow churn: every packet is a new flow in a full table, so each one
// evicts (the worst case for the table: insert + sampled eviction + export).
void BM_FlowTableChurn(benchmark::State& state) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  flow_table_config cfg;
  cfg.max_flows = flows;
  flow_table table(cfg, service_ports::defaults());
  null_sink sink;
  record_buffer out(sink);
  std::vector<decoded_packet> batch(kBatch);
  uint32_t next = 0;
  uint64_t ts = 1'700'000'000'000'000'000ull;
  for (auto _ : state) {
    for (auto& p : batch) p = packet_of(next++ & 0xffffff, false, ts++);
    table.update(batch, out);
  }
  out.flush();
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  state.SetLabel(std::to_string(flows) + " max flows, evicting");
}

BENCHMARK(BM_FlowTableChurn)->Arg(100'000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace flower
