#pragma once
// Traffic and harness shared by the attacker tests (time_jump_test,
// hash_seed_test, hostile_test): a deterministic trace of Ethernet/IPv4 UDP
// frames with idle splits, and runs of flow_engine / parallel_engine that
// return their records sorted, so two runs compare as sets. Test-only:
// allocates freely.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "pipeline/flow_engine.h"
#include "pipeline/parallel_engine.h"
#include "tests/packet_builder.h"

namespace flower::test {

inline constexpr uint64_t kT0 = 1'700'000'000'000'000'000ull;

struct collecting_sink final : record_sink {
  std::mutex mutex;  // parallel_engine calls one at a time; the lock keeps TSan's proof trivial
  std::vector<flow_record> records;
  void consume(std::span<const flow_record> r) override {
    std::lock_guard<std::mutex> lock(mutex);
    records.insert(records.end(), r.begin(), r.end());
  }
};

// Everything a record says, comparable.
inline auto fields(const flow_record& r) {
  return std::tuple(std::string(reinterpret_cast<const char*>(&r.key), sizeof r.key), r.fwd.packets, r.fwd.bytes,
                    r.fwd.frame_bytes, r.fwd.tcp_flags, r.rev.packets, r.rev.bytes, r.rev.frame_bytes,
                    r.rev.tcp_flags, r.first_ns, r.last_ns, static_cast<int>(r.reason));
}

inline std::vector<flow_record> sorted(std::vector<flow_record> v) {
  std::sort(v.begin(), v.end(), [](const flow_record& a, const flow_record& b) { return fields(a) < fields(b); });
  return v;
}

inline bool same_records(const std::vector<flow_record>& a, const std::vector<flow_record>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (fields(a[i]) != fields(b[i])) return false;
  return true;
}

// Frames that own their bytes, and views over them with chosen times.
struct trace {
  std::vector<frame> frames;
  std::vector<packet_view> views;

  void add(frame f, uint64_t ts_ns) {
    frames.push_back(std::move(f));
    views.clear();  // rebuilt by finish(): frames may have moved
    times.push_back(ts_ns);
  }
  // Call once all frames are in.
  void finish() {
    views.clear();
    for (size_t i = 0; i < frames.size(); ++i) {
      packet_view v = frames[i].view();
      v.ts_ns = times[i];
      views.push_back(v);
    }
  }
  std::vector<uint64_t> times;
};

inline frame udp4_frame(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, size_t payload = 18) {
  const auto dotted = [](uint32_t a) {
    return std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 255) + "." + std::to_string(a >> 8 & 255) + "." +
           std::to_string(a & 255);
  };
  return packet_builder{}.eth(0x0800).ipv4(dotted(src), dotted(dst), 17).udp(sport, dport).payload(payload).build();
}

// `packets` UDP packets 5 ms apart over 400 flows, each flow busy only in
// every fourth 10 s phase, so with a 5 s idle timeout flows go idle and
// come back in new records throughout (sweeps and lazy checks both matter).
inline trace phased_traffic(size_t packets, uint64_t seed = 1) {
  trace t;
  uint64_t rng = seed;
  const auto next = [&] { return rng = rng * 6364136223846793005ull + 1442695040888963407ull, rng >> 33; };
  for (size_t i = 0; i < packets; ++i) {
    const uint64_t ts = kT0 + i * 5'000'000ull;
    const uint64_t phase = i / 2000;
    const uint32_t flow = static_cast<uint32_t>((next() % 100) * 4 + phase % 4);
    const bool reply = next() % 3 == 0;
    const uint32_t client = 0x0a000000u | flow, server = 0x0a640000u | (flow % 7);
    const auto port = static_cast<uint16_t>(30000 + flow);
    t.add(reply ? udp4_frame(server, 53, client, port) : udp4_frame(client, port, server, 53), ts);
  }
  return t;
}

inline engine_config hardening_config(uint64_t seed = 7) {
  engine_config c;
  c.table.max_flows = 1u << 14;
  c.table.idle_timeout_ns = 5'000'000'000ull;
  c.table.huge_pages = false;
  c.hash_seed = seed;
  return c;
}

struct run_result {
  std::vector<flow_record> records;  // sorted
  engine_counters counters;
};

inline run_result run_flow_engine(const std::vector<packet_view>& views, const engine_config& config,
                                  size_t batch = 256) {
  flow_engine engine(config);
  collecting_sink sink;
  {
    record_buffer out(sink);
    for (size_t i = 0; i < views.size(); i += batch)
      engine.process(std::span<const packet_view>(views).subspan(i, std::min(batch, views.size() - i)), out);
    engine.finish(out);
    out.flush();
  }
  return {sorted(std::move(sink.records)), engine.counters()};
}

inline run_result run_parallel(const std::vector<packet_view>& views, const engine_config& config, unsigned threads) {
  parallel_config pc;
  pc.engine = config;
  pc.engine.table.max_flows = config.table.max_flows * threads;  // the same room per shard
  pc.threads = threads;
  collecting_sink sink;
  parallel_engine engine(pc, sink);
  span_source source(views);
  engine.run(source);
  engine.finish();
  return {sorted(std::move(sink.records)), engine.counters()};
}

}  // namespace flower::test
