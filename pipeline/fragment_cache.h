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

namespace flower {

struct fragment_counters {
  uint64_t first = 0;     // first fragments remembered
  uint64_t resolved = 0;  // later fragments given their datagram's ports
  uint64_t orphans = 0;   // later fragments with no first fragment seen before
};

class fragment_cache {
 public:
  explicit fragment_cache(uint32_t slots = 1u << 14, uint64_t ttl_ns = 30'000'000'000ull);

  // Note first fragments, fill in ports of later ones. noexcept, no allocation.
  void resolve(decoded_packet& packet) noexcept;

  const fragment_counters& counters() const noexcept { return counters_; }

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
  fragment_counters counters_;
};

}  // namespace flower
