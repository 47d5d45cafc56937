// The engine's rate and ledger under hostile traffic (tests/hostile_mix.h):
// fragment floods, IPv6 extension chains at and past their limit, tunnels
// nested past theirs, zero-length and truncated frames. One flow_engine
// (decode + fragment cache + flow table on one core) meters a prepared
// mix in a loop, as the sensor's offline path does. Each run reports, next
// to packets per second, where every packet went: metered, malformed,
// unsupported (received == the sum), fragments remembered and orphaned,
// flows evicted, and the table's and fragment cache's fill against their
// fixed sizes (state does not grow with the flood).
//
//   build/bench/bench_hostile                      # the mix, then each kind alone
//   build/bench/bench_hostile --benchmark_filter=Mix

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "pipeline/flow_engine.h"
#include "tests/hostile_mix.h"

namespace {

using namespace flower;
using flower::test::hostile_kind;

constexpr size_t kPrepared = 1u << 16;  // distinct frames, looped with time moving on
constexpr uint64_t kT0 = 1'700'000'000'000'000'000ull;

struct null_sink final : record_sink {
  uint64_t records = 0;
  void consume(std::span<const flow_record> r) override { records += r.size(); }
};

engine_config bench_config() {
  engine_config c;
  c.table.max_flows = 1u << 14;  // the flood's flows outnumber it: the table stays full and evicts
  c.fragment_slots = 1u << 14;   // the default
  c.hash_seed = 1;
  return c;
}

void report(benchmark::State& state, const flow_engine& engine, const null_sink& sink, const engine_config& config) {
  const engine_counters c = engine.counters();
  state.SetItemsProcessed(static_cast<int64_t>(c.received));
  state.counters["metered"] = static_cast<double>(c.metered);
  state.counters["malformed"] = static_cast<double>(c.malformed());
  state.counters["unsupported"] = static_cast<double>(c.unsupported());
  state.counters["uncounted"] = static_cast<double>(c.received - c.metered - c.malformed() - c.unsupported());
  state.counters["frag_first"] = static_cast<double>(c.fragments.first);
  state.counters["frag_orphans"] = static_cast<double>(c.fragments.orphans);
  state.counters["evicted"] = static_cast<double>(c.table.evictions);
  state.counters["records"] = static_cast<double>(sink.records);
  state.counters["table_fill"] = static_cast<double>(engine.shard().table().size()) / config.table.max_flows;
  state.counters["frag_fill"] =
      static_cast<double>(engine.shard().fragments().remembered()) / engine.shard().fragments().capacity();
}

// Meter `views` round after round; each round's times follow the last
// round's, so the clock moves as in a long capture.
void meter_loop(benchmark::State& state, std::vector<packet_view> views) {
  const engine_config config = bench_config();
  flow_engine engine(config);
  null_sink sink;
  record_buffer out(sink);
  const uint64_t round_ns = views.size() * 1000;
  for (auto _ : state) {
    for (size_t i = 0; i < views.size(); i += 256)
      engine.process(std::span<const packet_view>(views).subspan(i, std::min<size_t>(256, views.size() - i)), out);
    state.PauseTiming();
    for (packet_view& v : views) v.ts_ns += round_ns;
    state.ResumeTiming();
  }
  out.flush();
  report(state, engine, sink, config);
}

// The whole mix: a third ordinary UDP, the rest hostile in rotation.
void BM_HostileMix(benchmark::State& state) {
  static const test::hostile_mix mix = test::make_hostile_mix(kPrepared, kT0);
  state.SetLabel("mix: 1/3 ordinary, fragment floods, v6 ext chains, nested tunnels, empty/cut frames");
  meter_loop(state, mix.views);
}
BENCHMARK(BM_HostileMix)->Unit(benchmark::kMillisecond);

// One kind of frame alone (the argument is a hostile_kind).
void BM_HostileKind(benchmark::State& state) {
  const auto kind = static_cast<hostile_kind>(state.range(0));
  static std::vector<std::vector<test::frame>> frames(static_cast<size_t>(hostile_kind::count));
  std::vector<test::frame>& f = frames[static_cast<size_t>(kind)];
  if (f.empty())
    for (uint32_t i = 0; i < kPrepared; ++i) f.push_back(test::hostile_frame(kind, i));
  std::vector<packet_view> views;
  for (size_t i = 0; i < f.size(); ++i) {
    packet_view v = f[i].view();
    v.ts_ns = kT0 + i * 1000;
    views.push_back(v);
  }
  static constexpr const char* names[] = {"ordinary",        "first_fragment", "orphan_fragment",
                                          "v6_ext_at_limit", "v6_ext_beyond",  "tunnel_nest",
                                          "zero_length",     "truncated"};
  static_assert(std::size(names) == static_cast<size_t>(hostile_kind::count));
  state.SetLabel(names[state.range(0)]);
  meter_loop(state, std::move(views));
}
BENCHMARK(BM_HostileKind)->DenseRange(0, static_cast<int>(hostile_kind::count) - 1)->Unit(benchmark::kMillisecond);

}  // namespace
