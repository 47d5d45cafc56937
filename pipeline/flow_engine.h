#pragma once
// flow_engine: decoder + fragment cache + flow table on one thread: the
// whole metering path for one shard, and the complete engine for the
// offline sensor. The multi-core pipeline runs one flow_shard per worker
// and the decoder in its own parallel stage; the per-shard code is the same.
//
//   flow_engine engine(config);
//   record_buffer out(sink);
//   engine.process(batch, out);        // decode, meter, expire
//   engine.finish(out);                // export everything (shutdown)
//   engine_counters c = engine.counters();

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "pipeline/decode.h"
#include "pipeline/detail/clock_guard.h"
#include "pipeline/flow_table.h"
#include "pipeline/fragment_cache.h"

namespace flower {

// Where every packet went. Conservation: received == metered +
// sum(status[malformed]) + sum(status[unsupported]). (The filter runs before
// the engine; the sensor adds `filtered` on top.)
struct engine_counters {
  uint64_t received = 0;
  uint64_t metered = 0;
  std::array<uint64_t, kDecodeStatusCount> status{};  // status[ok] == metered
  fragment_counters fragments;
  flow_table_counters table;
  // Packets stamped far ahead of the recent packets: metered, but they did
  // not move the engine's clock (one forged time must not expire every flow).
  uint64_t time_jumps = 0;

  uint64_t malformed() const noexcept;
  uint64_t unsupported() const noexcept;
  engine_counters& operator+=(const engine_counters& other) noexcept;
};

struct engine_config {
  flow_table_config table;
  decode_options decode;
  service_ports ports = service_ports::defaults();
  uint32_t fragment_slots = 1u << 14;  // datagrams whose first fragment is remembered
  // Keys the flow hash (index placement and shard choice) so crafted keys
  // cannot be aimed at one bucket. Empty: drawn from the kernel's random
  // source once per engine; set it (--hash-seed) to repeat a run exactly.
  // Records never depend on it, except which flows a full table evicts.
  std::optional<uint64_t> hash_seed;
};

// Decode every packet of `batch` into `out` (room for batch.size()),
// keeping only those that decode; counts every packet in `status` under its
// decode_status. Returns how many were kept, and sets `fragment_work` when
// one of them is a fragment or carries a first-fragment note (the shard
// then resolves them; otherwise it need not look). Prefetches frames ahead.
size_t decode_batch(packet_batch batch, const decode_options& options, decoded_packet* out,
                    std::array<uint64_t, kDecodeStatusCount>& status, bool& fragment_work) noexcept;

// The seed an engine hashes with: config.hash_seed, or 64 random bits.
uint64_t effective_hash_seed(const engine_config& config);

// One shard: fragment resolution + flow table, fed with decoded packets.
// Its clock (the time expiry sweeps at) follows the packets it meters, but
// a packet stamped far ahead of it does not move it alone
// (detail/clock_guard.h; docs/flow-table.md, "Time jumps").
class flow_shard {
 public:
  // Hashes with effective_hash_seed(config): a parallel_engine resolves the
  // seed once and gives every shard the same.
  explicit flow_shard(const engine_config& config);

  // Meter decoded packets (status ok), then expire by the shard's clock.
  void process(std::span<decoded_packet> batch, record_buffer& out) noexcept;
  // The same, told by decode_batch whether any packet needs fragment work.
  void process(std::span<decoded_packet> batch, bool fragment_work, record_buffer& out) noexcept;
  // Decode and meter captured frames in one pass (flow_table::update_frames:
  // the frames' and the table's cache misses overlap), then expire. Every
  // frame is counted in `status`. From the first frame that needs fragment
  // work on, the rest of the batch is decoded into `scratch` (room for
  // frames.size()) and goes through process(), so the records are the same
  // as decode_batch + process would make.
  void process_frames(packet_batch frames, const decode_options& options,
                      std::array<uint64_t, kDecodeStatusCount>& status, decoded_packet* scratch,
                      record_buffer& out) noexcept;
  // Expire by a trusted time (a live source's wall clock) when no packets
  // come; it moves the clock at once.
  void tick(uint64_t now_ns, record_buffer& out) noexcept;
  // The input has ended: settle the clock (a run of far packets still
  // pending is a step or a jump, see clock_guard::finish). finish() does it
  // first; a caller that aligns shards calls it before reading now_ns().
  void end_of_input() noexcept { clock_.finish(); }
  void finish(record_buffer& out) noexcept {
    end_of_input();
    finish_at(now_ns(), out);
  }
  // Export everything: what is due at `at_ns` (0: nothing is) with its own
  // reason, the rest as end_reason::shutdown. parallel_engine passes one
  // time to every shard, so the reasons do not depend on the shard count.
  void finish_at(uint64_t at_ns, record_buffer& out) noexcept;

  const flow_table& table() const noexcept { return table_; }
  uint64_t now_ns() const noexcept { return clock_.now_ns(); }  // the shard's clock
  uint64_t time_jumps() const noexcept { return clock_.jumps(); }
  uint64_t hash_seed() const noexcept { return table_.hash_seed(); }
  const fragment_cache& fragments() const noexcept { return fragments_; }

 private:
  flow_shard(const engine_config& config, uint64_t seed);
  fragment_cache fragments_;
  flow_table table_;
  detail::clock_guard clock_;
};

class flow_engine {
 public:
  explicit flow_engine(const engine_config& config);

  void process(packet_batch batch, record_buffer& out) noexcept;
  void tick(uint64_t now_ns, record_buffer& out) noexcept { shard_.tick(now_ns, out); }
  void finish(record_buffer& out) noexcept { shard_.finish(out); }

  engine_counters counters() const noexcept;
  const flow_shard& shard() const noexcept { return shard_; }
  uint64_t hash_seed() const noexcept { return shard_.hash_seed(); }  // the effective seed

 private:
  static constexpr size_t kBatch = 256;
  decode_options decode_;
  flow_shard shard_;
  engine_counters counters_;  // received / status; fragments + table read from shard_
  std::array<decoded_packet, kBatch> decoded_;
};

}  // namespace flower
