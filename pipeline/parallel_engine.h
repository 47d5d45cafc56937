#pragma once
// parallel_engine: the multi-core metering engine. N shards, each a
// flow_shard (fragment cache + flow table) owned by exactly one worker
// thread; a flow lives on one shard, so no lock ever guards a flow.
// docs/architecture.md has the thread layout and the determinism argument.
//
//   parallel_config cfg;                 // cfg.threads = 0: all cores
//   parallel_engine engine(cfg, sink);   // sink: called by one thread at a time
//   engine.run(file_source);             // single queue: decode in parallel, shard by hash
//   engine.run_per_queue(queues);        // multi queue: queue i runs to completion on shard i
//   engine.finish();                     // export everything (end_reason::shutdown)
//   drop_ledger l = engine.ledger();
//
// A Source is anything with `size_t next_batch(std::span<packet_view>) noexcept`
// (the shape of capture_file). Offline (config.live == false) a return of 0
// means the end of the input, and full rings make the dispatcher wait, so no
// packet is lost and results are identical for every thread count. Live, 0
// means "nothing right now", a full ring drops (counted per ring) rather
// than stalling the capture, idle shards expire flows by wall-clock time, and
// run() returns after request_stop().
//
// Views a source returns must stay valid until the source has been asked for
// `kMaxBatchesInFlight` more batches (views are decoded in parallel stages;
// nothing reads them after decoding).
//
// Threads: run() and finish() must be called from one thread; counters()
// and ledger() are exact after run() returns (not during).

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "pipeline/drop_ledger.h"
#include "pipeline/flow_engine.h"
#include "pipeline/packet.h"

namespace flower {

struct parallel_config {
  engine_config engine;         // table.max_flows is the total; each shard gets max_flows / shards
  unsigned threads = 0;         // shards (= worker threads); 0 = std::thread::hardware_concurrency()
  bool live = false;            // see above: drop on full rings, wall-clock ticks, stop on request
  uint32_t ring_slots = 8192;   // decoded packets per shard ring (single-queue mode)
  bool pin_threads = false;     // pin shard worker i to CPU i (modulo the CPU count)
  unsigned decode_threads = 0;  // single-queue mode: TBB arena size for read/decode/dispatch; 0 = auto
};

// Pins the calling thread to the CPU that shard worker `index` gets with
// pin_threads (index modulo the CPU count); best effort. For code that must
// run where a worker will, such as a benchmark preparing its queues.
void pin_worker_thread(unsigned index) noexcept;

// One queue worker's share of a run_per_queue() call.
struct queue_worker_run {
  uint64_t packets = 0;  // pulled from its queue
  uint64_t ns = 0;       // from its start to its return (monotonic clock)
};

inline constexpr size_t kPipelineBatch = 256;     // packets per source batch / ring transfer
inline constexpr size_t kMaxBatchesInFlight = 8;  // parallel_pipeline tokens (live batches)

class parallel_engine {
 public:
  parallel_engine(const parallel_config& config, record_sink& sink);
  ~parallel_engine();
  parallel_engine(const parallel_engine&) = delete;
  parallel_engine& operator=(const parallel_engine&) = delete;

  unsigned shards() const noexcept;
  // The seed of the flow hash (shard choice, tables, fragment caches):
  // config.engine.hash_seed, or the one drawn at construction.
  uint64_t hash_seed() const noexcept;

  // Single-queue feeding (pcap file, libpcap): a oneTBB parallel_pipeline
  // reads batches, decodes and hashes them in parallel, and dispatches by
  // shard_hash into per-shard SPSC rings drained by the shard workers.
  template <typename Source>
  void run(Source& source) {
    run_single({&source, &pull<Source>, borrower<Source>()});
  }

  // Multi-queue feeding (AF_XDP with RSS): queues.size() == shards(); the
  // worker of shard i pulls queue i and decodes + meters it to completion.
  template <typename Source>
  void run_per_queue(std::span<Source> queues) {
    std::vector<source_ref> refs;
    refs.reserve(queues.size());
    for (Source& q : queues) refs.push_back({&q, &pull<Source>, borrower<Source>()});
    run_queues(refs);
  }

  // Make run()/run_per_queue() return soon (any thread, signal-safe). Sticky:
  // a later run() returns at once, so a stop that races startup is not lost.
  void request_stop() noexcept { stop_.store(true, std::memory_order_relaxed); }

  // Bring every shard to the newest packet time seen by any shard (so flows
  // idle by then end as `idle`, exactly as on one core), then export all
  // remaining flows as `shutdown`. Call once, after the last run().
  void finish();

  // Summed over shards. Unlike flow_engine, status[ok] == metered + ring
  // drops (decoded, then lost to a full ring); ledger() spells that out.
  engine_counters counters() const;
  drop_ledger ledger() const;
  size_t table_memory_bytes() const noexcept;  // all shards' flow tables
  size_t active_flows() const noexcept;        // flows currently in the tables

  // Per shard, what its worker did in the last run_per_queue(): a run lasts
  // as long as its slowest worker, and on a shared host the workers' own
  // rates show which core was held back.
  std::vector<queue_worker_run> last_queue_run() const;

 private:
  struct source_ref {
    void* ctx;
    size_t (*next_batch)(void*, std::span<packet_view>) noexcept;
    // Sources whose views already sit in memory lend them instead of
    // copying (empty = none left); nullptr when the source cannot.
    packet_batch (*borrow_batch)(void*, size_t max) noexcept = nullptr;
  };
  template <typename Source>
  static size_t pull(void* ctx, std::span<packet_view> out) noexcept {
    return static_cast<Source*>(ctx)->next_batch(out);
  }
  template <typename Source>
  static constexpr auto borrower() noexcept {
    packet_batch (*fn)(void*, size_t) noexcept = nullptr;
    if constexpr (requires(Source& s, size_t n) { { s.borrow_batch(n) } -> std::same_as<packet_batch>; })
      fn = +[](void* ctx, size_t max) noexcept { return static_cast<Source*>(ctx)->borrow_batch(max); };
    return fn;
  }

  void run_single(source_ref source);
  void run_queues(std::span<const source_ref> queues);

  struct impl;
  std::unique_ptr<impl> impl_;
  std::atomic<bool> stop_{false};
};

// A Source over packets already in memory (tests, benchmarks, replay).
// A cache line each: queue workers advance sources that sit side by side
// in one array, and sharing a line would bounce it between their cores on
// every batch.
class alignas(64) span_source {
 public:
  explicit span_source(std::span<const packet_view> packets) noexcept : packets_(packets) {}
  size_t next_batch(std::span<packet_view> out) noexcept {
    const packet_batch b = borrow_batch(out.size());
    for (size_t i = 0; i < b.size(); ++i) out[i] = b[i];
    return b.size();
  }
  // The next views in place, valid as long as the span given to the
  // constructor: a queue worker decodes them without a copy.
  packet_batch borrow_batch(size_t max) noexcept {
    const size_t n = max < packets_.size() - at_ ? max : packets_.size() - at_;
    const packet_batch b = packets_.subspan(at_, n);
    at_ += n;
    return b;
  }

 private:
  std::span<const packet_view> packets_;
  size_t at_ = 0;
};

}  // namespace flower
