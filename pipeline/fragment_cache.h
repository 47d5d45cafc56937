#pragma once
// fragment_cache: gives non-first IP fragments the ports of their datagram.
//
// We reassemble keys, not payload: a first fragment (offset 0, more
// fragments) records (version, src, dst, proto, id) -> ports; a later
// fragment with the same identity seen after it takes those ports and lands
// in the flow of its datagram. A later fragment whose first fragment was not
// seen before it keeps ports 0 (its own port-0 flow) and is counted as an
// orphan. Fixed size, oldest entries overwritten; entries older than
// `ttl_ns` (packet time) are ignored.
//
//   fragment_cache frags;
//   frags.resolve(decoded);   // before the flow table sees the packet

#include <cstdint>
#include <memory>
#include <vector>

#include "pipeline/decode.h"
#include "pipeline/flow_key.h"

namespace flower {

struct fragment_counters {
  uint64_t first = 0;     // first fragments remembered
  uint64_t resolved = 0;  // later fragments given their datagram's ports
  uint64_t orphans = 0;   // later fragments with no first fragment seen before
};

inline constexpr uint64_t kFragmentTtlNs = 30'000'000'000ull;  // packet time a first fragment is remembered

class fragment_cache {
 public:
  // `hash_seed` keys the set choice (flow_key.h: hash_key), so crafted
  // datagrams cannot be aimed at the set of a victim's first fragments.
  explicit fragment_cache(uint32_t slots = 1u << 14, uint64_t ttl_ns = kFragmentTtlNs, uint64_t hash_seed = 0);

  // Note first fragments, fill in ports of later ones. noexcept, no allocation.
  void resolve(decoded_packet& packet) noexcept;

  const fragment_counters& counters() const noexcept { return counters_; }
  uint32_t capacity() const noexcept { return static_cast<uint32_t>(slots_.size()); }  // fixed at construction
  uint32_t remembered() const noexcept;  // slots in use (a walk; diagnostics and tests)
  // What a cache of `slots` allocates (the sensor's start-up memory check).
  static size_t memory_bytes_for(uint32_t slots) noexcept { return size_t{slots} * sizeof(entry); }

 private:
  struct entry {
    fragment_note note;
    uint64_t ts_ns = 0;
    bool used = false;
  };
  void remember(const fragment_note& note, uint64_t ts_ns) noexcept;
  const entry* find(const flow_key& key, uint32_t id, uint64_t ts_ns) const noexcept;

  std::vector<entry> slots_;
  uint64_t ttl_ns_;
  hash_key hash_;
  fragment_counters counters_;
};

}  // namespace flower
