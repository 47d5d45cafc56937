#pragma once
// flow_table: fixed-memory bidirectional flow table for one shard.
//
//   flow_table table(config, service_ports::defaults());
//   table.update(decoded_batch, out);   // meter packets, export what ended
//   table.expire(now_ns, out);          // idle / linger / active expiry
//   table.flush(end_reason::shutdown, out);
//
// Memory is allocated once from `max_flows` (at most 128 bytes per flow,
// index included) and never per packet. Lookups run in stages over the whole
// batch (hash + prefetch index, warm entry, compare and update) so memory
// latency overlaps across packets.
//
// Expiry is driven by packet time, so offline results are deterministic:
// - on a packet, its flow is first closed if it has been idle for
//   idle_timeout, has lived for active_timeout (record exported, flow
//   continues in a new record), or ended (FIN both ways / RST) more than
//   tcp_linger ago or a new SYN reopens the 5-tuple;
// - `expire` sweeps flows that receive no more packets;
// - when all max_flows slots are in use, a new flow evicts the least
//   recently seen of a sample of flows (end_reason::evicted), never silently.
// Not thread-safe: one table per shard, one thread per shard.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "pipeline/decode.h"
#include "pipeline/flow_record.h"
#include "pipeline/record_buffer.h"
#include "pipeline/service_ports.h"

namespace flower {

inline constexpr uint64_t kNsPerSec = 1'000'000'000ull;

struct flow_table_config {
  uint32_t max_flows = 1u << 21;                  // --max-flows
  uint64_t idle_timeout_ns = 30 * kNsPerSec;      // --idle-timeout, 0 = never
  uint64_t active_timeout_ns = 1800 * kNsPerSec;  // --active-timeout, 0 = never
  uint64_t tcp_linger_ns = 2 * kNsPerSec;         // after FIN both ways / RST
  // A record is exported (end_reason::active) and continued before a
  // direction's packet counter would pass this; the u32 limit in production,
  // small in tests.
  uint32_t max_record_packets = UINT32_MAX;
  bool huge_pages = true;  // madvise(MADV_HUGEPAGE) the pool and index (fewer TLB misses)
  // Keys the index hash (flow_key.h: hash_key). The engine passes its
  // per-run seed (random unless engine_config::hash_seed); records never
  // depend on it.
  uint64_t hash_seed = 0;
};

struct flow_table_counters {
  uint64_t packets = 0;        // packets metered into flows
  uint64_t flows_created = 0;
  uint64_t records_exported = 0;
  uint64_t by_reason[6] = {};  // indexed by end_reason value
  uint64_t evictions = 0;      // flows pushed out by a new flow (table full)
  uint64_t sweeps = 0;         // expire() calls that scanned part of the pool
};

class flow_table {
 public:
  flow_table(const flow_table_config& config, service_ports ports);
  ~flow_table();
  flow_table(const flow_table&) = delete;
  flow_table& operator=(const flow_table&) = delete;

  // Meter every packet of the batch (keys in wire order, fragments resolved).
  // Returns the newest packet time in the batch (0 if it is empty): the
  // caller's clock, found on the way rather than in a pass of its own.
  uint64_t update(std::span<const decoded_packet> batch, record_buffer& out) noexcept;

  // Decode and meter frames in one pass: decoding is the first stage of the
  // lookup pipeline, so the frames' and the table's cache misses overlap
  // instead of coming in two phases. Every frame is counted in `status`
  // (ok = metered). Stops before the first frame that needs fragment work
  // (a fragment, or a first-fragment note for an outer flow), which only
  // the shard's fragment_cache can do, and returns how many frames it took
  // (frames.size() when none needs it); `newest` is the newest packet time
  // metered (unchanged if none).
  size_t update_frames(std::span<const packet_view> frames, const decode_options& options,
                       std::array<uint64_t, kDecodeStatusCount>& status, uint64_t& newest,
                       record_buffer& out) noexcept;

  // Export flows that are idle, lingered after their TCP end, or past the
  // active timeout at `now_ns`. Cheap to call every batch: it sweeps a slice.
  void expire(uint64_t now_ns, record_buffer& out) noexcept;

  // Sweep the whole table at `now_ns` (not a slice): every flow that is due
  // by then ends with its own reason. Used before flush() at shutdown so the
  // reasons do not depend on how far an incremental sweep had got.
  void expire_all(uint64_t now_ns, record_buffer& out) noexcept;

  // Export every flow with `reason` and empty the table.
  void flush(end_reason reason, record_buffer& out) noexcept;

  size_t size() const noexcept;
  size_t max_flows() const noexcept;
  size_t memory_bytes() const noexcept;  // everything allocated for flows and index
  // What a table of max_flows would map (pool, index, side arrays, huge-page
  // rounding): the sensor checks it against the machine before it starts.
  static size_t memory_bytes_for(uint32_t max_flows, bool huge_pages = true) noexcept;
  const flow_table_counters& counters() const noexcept;
  uint64_t hash_seed() const noexcept;

  // The index bucket a key (either orientation) calls home under this
  // table's seed: tests build colliding keys with it.
  uint32_t bucket_of(const flow_key& key) const noexcept;
  // How far flows sit from their home bucket, in buckets (0 = at home):
  // the cost of a lookup, as a number rather than a time. A walk over the
  // whole index; diagnostics and tests only.
  struct probe_stats {
    uint64_t flows = 0;
    uint64_t total_buckets = 0;    // sum of the distances
    uint32_t longest_buckets = 0;  // the longest probe a lookup of a live flow makes, minus 1
  };
  probe_stats index_probes() const noexcept;

  // Read-only walk over live flows as records (console / tests). Not on the
  // hot path; `fn(const flow_record&)`.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    visit_impl(+[](void* ctx, const flow_record& r) { (*static_cast<Fn*>(ctx))(r); }, &fn);
  }

 private:
  void visit_impl(void (*cb)(void*, const flow_record&), void* ctx) const;
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace flower
