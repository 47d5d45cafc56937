// flow_shard / flow_engine: the per-shard metering path. See flow_engine.h.

#include "pipeline/flow_engine.h"

#include "pipeline/detail/frame_prefetch.h"

#include <algorithm>
#include <cstdint>

namespace flower {

uint64_t engine_counters::malformed() const noexcept {
  uint64_t n = 0;
  for (size_t i = 0; i < kDecodeStatusCount; ++i)
    if (kDecodeStatusCategory[i] == status_category::malformed) n += status[i];
  return n;
}

uint64_t engine_counters::unsupported() const noexcept {
  uint64_t n = 0;
  for (size_t i = 0; i < kDecodeStatusCount; ++i)
    if (kDecodeStatusCategory[i] == status_category::unsupported) n += status[i];
  return n;
}

engine_counters& engine_counters::operator+=(const engine_counters& o) noexcept {
  received += o.received;
  metered += o.metered;
  for (size_t i = 0; i < kDecodeStatusCount; ++i) status[i] += o.status[i];
  fragments.first += o.fragments.first;
  fragments.resolved += o.fragments.resolved;
  fragments.orphans += o.fragments.orphans;
  table.packets += o.table.packets;
  table.flows_created += o.table.flows_created;
  table.records_exported += o.table.records_exported;
  for (size_t i = 0; i < std::size(table.by_reason); ++i) table.by_reason[i] += o.table.by_reason[i];
  table.evictions += o.table.evictions;
  table.sweeps += o.table.sweeps;
  time_jumps += o.time_jumps;
  return *this;
}

uint64_t effective_hash_seed(const engine_config& config) {
  return config.hash_seed ? *config.hash_seed : random_hash_seed();
}

namespace {
flow_table_config seeded(flow_table_config table, uint64_t seed) {
  table.hash_seed = seed;
  return table;
}
}  // namespace

flow_shard::flow_shard(const engine_config& config) : flow_shard(config, effective_hash_seed(config)) {}

flow_shard::flow_shard(const engine_config& config, uint64_t seed)
    : fragments_(config.fragment_slots, kFragmentTtlNs, seed), table_(seeded(config.table, seed), config.ports) {}

void flow_shard::process(std::span<decoded_packet> batch, record_buffer& out) noexcept {
  bool fragment_work = false;
  for (const decoded_packet& p : batch) fragment_work |= p.frag != fragment_kind::none || p.has_outer_first_fragment;
  process(batch, fragment_work, out);
}

void flow_shard::process(std::span<decoded_packet> batch, bool fragment_work, record_buffer& out) noexcept {
  if (fragment_work) [[unlikely]] {
    bool notes = false;
    for (decoded_packet& p : batch) {
      if (p.frag != fragment_kind::none || p.has_outer_first_fragment) {
        fragments_.resolve(p);
        notes |= p.note_only;
      }
    }
    if (notes) {  // note-only copies are remembered, not metered
      size_t kept = 0;
      for (const decoded_packet& p : batch)
        if (!p.note_only) batch[kept++] = p;
      batch = batch.first(kept);
    }
  }
  const uint64_t newest = table_.update(batch, out);
  clock_.advance(newest, batch.size(), [&](size_t i) { return batch[i].ts_ns; });
  table_.expire(clock_.now_ns(), out);
}

void flow_shard::process_frames(packet_batch frames, const decode_options& options,
                                std::array<uint64_t, kDecodeStatusCount>& status, decoded_packet* scratch,
                                record_buffer& out) noexcept {
  uint64_t newest = 0;
  const uint64_t metered_before = status[static_cast<size_t>(decode_status::ok)];
  const size_t taken = table_.update_frames(frames, options, status, newest, out);
  const uint64_t metered = status[static_cast<size_t>(decode_status::ok)] - metered_before;
  if (metered != 0) {
    if (clock_.plausible(newest)) [[likely]] {
      clock_.advance(newest, metered, [](size_t) { return uint64_t{0}; });  // one compare, no rescan
    } else {
      // A far-ahead time among them: the guard needs each metered time in
      // order. The frames before `taken` that decode are the ones
      // update_frames metered (none of them needs fragment work).
      for (size_t i = 0; i < taken; ++i)
        if (decode_packet(frames[i], options, scratch[0]) == decode_status::ok) clock_.observe(scratch[0].ts_ns);
    }
  }
  if (taken < frames.size()) [[unlikely]] {
    bool fragment_work;
    const size_t n = decode_batch(frames.subspan(taken), options, scratch, status, fragment_work);
    process({scratch, n}, fragment_work, out);  // meters the rest, then expires
    return;
  }
  table_.expire(clock_.now_ns(), out);
}

void flow_shard::tick(uint64_t now_ns, record_buffer& out) noexcept {
  clock_.tick(now_ns);
  table_.expire(clock_.now_ns(), out);
}

void flow_shard::finish_at(uint64_t now, record_buffer& out) noexcept {
  // Flows already due by then end with their own reason (idle, tcp_end,
  // active), whatever the shard layout; the rest: shutdown.
  if (now != 0) table_.expire_all(now, out);
  table_.flush(end_reason::shutdown, out);
}

flow_engine::flow_engine(const engine_config& config) : decode_(config.decode), shard_(config) {}

size_t decode_batch(packet_batch batch, const decode_options& options, decoded_packet* out,
                    std::array<uint64_t, kDecodeStatusCount>& status, bool& fragment_work) noexcept {
  const packet_view* in = batch.data();
  const size_t count = batch.size();
  size_t n = 0;
  fragment_work = false;
  // decode_packet() unrolled: only the general path makes fragments or
  // notes, so only its packets are looked at for them.
  const auto decode_one = [&](size_t i) __attribute__((always_inline)) {
    if (detail::decode_plain(in[i], out[n])) [[likely]] {
      ++n;
      return;
    }
    const decode_status s = detail::decode_general(in[i], options, out[n]);
    if (s == decode_status::ok) {
      fragment_work |= out[n].frag != fragment_kind::none || out[n].has_outer_first_fragment;
      ++n;
    } else {
      ++status[static_cast<size_t>(s)];
    }
  };
  // Frames and views are asked for ahead (detail/frame_prefetch.h). Three
  // loops so the long one has no bounds tests.
  using detail::kFramePrefetch;
  using detail::kViewPrefetch;
  const auto prefetch_frame = [&](size_t i) __attribute__((always_inline)) {
    detail::prefetch_frame_headers(in[i]);
  };
  size_t i = 0;
  for (; i + kViewPrefetch + 1 < count; i += 2) {  // two views per cache line
    __builtin_prefetch(&in[i + kViewPrefetch]);
    prefetch_frame(i + kFramePrefetch);
    decode_one(i);
    prefetch_frame(i + 1 + kFramePrefetch);
    decode_one(i + 1);
  }
  for (; i + kFramePrefetch < count; ++i) {
    prefetch_frame(i + kFramePrefetch);
    decode_one(i);
  }
  for (; i < count; ++i) decode_one(i);
  // Counted once per batch: an increment in memory per packet is a chain of
  // store-to-load forwards that the loop would wait on.
  status[static_cast<size_t>(decode_status::ok)] += n;
  return n;
}

void flow_engine::process(packet_batch batch, record_buffer& out) noexcept {
  for (size_t i = 0; i < batch.size(); i += kBatch)
    shard_.process_frames(batch.subspan(i, std::min(kBatch, batch.size() - i)), decode_, counters_.status,
                          decoded_.data(), out);
  counters_.received += batch.size();
}

engine_counters flow_engine::counters() const noexcept {
  engine_counters c = counters_;
  c.metered = c.status[static_cast<size_t>(decode_status::ok)];
  c.fragments = shard_.fragments().counters();
  c.table = shard_.table().counters();
  c.time_jumps = shard_.time_jumps();
  return c;
}

}  // namespace flower
