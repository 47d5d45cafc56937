// spsc_ring throughput: one producer thread, one consumer thread, items of
// decoded_packet's size moved in batches (the dispatcher -> shard handoff).

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <thread>
#include <vector>

#include "pipeline/decode.h"
#include "pipeline/spsc_ring.h"

namespace flower {
namespace {

// Moves state.range(0)-item batches through a ring of state.range(1) slots.
void BM_SpscRingTwoThreads(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  spsc_ring<decoded_packet> ring(static_cast<size_t>(state.range(1)));
  std::vector<decoded_packet> in(batch);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> consumed{0};
  std::thread consumer([&] {
    uint64_t n = 0;
    for (;;) {
      auto r = ring.peek(batch);
      if (r.empty()) {
        if (done.load(std::memory_order_acquire) && ring.empty()) break;
        continue;
      }
      for (const decoded_packet& p : r) benchmark::DoNotOptimize(p.ts_ns);
      n += r.size();
      ring.release(r.size());
    }
    consumed.store(n, std::memory_order_release);
  });
  uint64_t produced = 0;
  for (auto _ : state) {
    size_t at = 0;
    while (at < batch) at += ring.push(std::span<const decoded_packet>(in).subspan(at));
    produced += batch;
  }
  done.store(true, std::memory_order_release);
  consumer.join();
  if (consumed.load() != produced) state.SkipWithError("lost items");
  state.SetItemsProcessed(static_cast<int64_t>(produced));
  state.SetLabel(std::to_string(sizeof(decoded_packet)) + " B items");
}
BENCHMARK(BM_SpscRingTwoThreads)->Args({32, 8192})->Args({256, 8192})->Args({256, 1024})->UseRealTime();

// Single thread: push then pop a batch (no sharing): the ring's own overhead.
void BM_SpscRingSameThread(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  spsc_ring<decoded_packet> ring(8192);
  std::vector<decoded_packet> in(batch), out(batch);
  for (auto _ : state) {
    ring.push(in);
    benchmark::DoNotOptimize(ring.pop(out));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
}
BENCHMARK(BM_SpscRingSameThread)->Arg(32)->Arg(256);

}  // namespace
}  // namespace flower
