// fragment_cache: 4-way set-associative map (version, src, dst, proto, vlan,
// id) -> ports of the datagram's first fragment. Within a set the oldest
// entry is overwritten. All memory is allocated by the constructor.

#include "pipeline/fragment_cache.h"

#include <algorithm>
#include <cstring>

#include "pipeline/flow_key.h"

namespace flower {
namespace {

constexpr uint32_t kWays = 4;

// Same datagram identity: addresses in wire order, protocol, VLAN, version.
bool same_datagram(const flow_key& x, const flow_key& y) noexcept {
  return x.addr_a == y.addr_a && x.addr_b == y.addr_b && x.proto == y.proto && x.vlan == y.vlan &&
         x.ip_version == y.ip_version;
}

uint64_t datagram_hash(const flow_key& key, uint32_t id, const hash_key& hk) noexcept {
  flow_key k = key;  // ports are not part of a datagram's identity
  k.port_a = 0;
  k.port_b = 0;
  return key_hash(k, hk) ^ (uint64_t{id} * 0x9e3779b97f4a7c15ull);
}

// fastrange: the hash's high half scaled onto [0, sets).
size_t set_of(uint64_t hash, size_t sets) noexcept { return static_cast<size_t>(((hash >> 32) * sets) >> 32); }

}  // namespace

fragment_cache::fragment_cache(uint32_t slots, uint64_t ttl_ns, uint64_t hash_seed)
    : slots_(std::max<uint32_t>(kWays, (slots + kWays - 1) / kWays * kWays)),
      ttl_ns_(ttl_ns),
      hash_(hash_key::from_seed(hash_seed)) {}

void fragment_cache::resolve(decoded_packet& packet) noexcept {
  if (packet.note_only) {  // counted where the packet itself is metered
    remember(packet.outer_first_fragment, packet.ts_ns);
    return;
  }
  if (packet.has_outer_first_fragment) {
    remember(packet.outer_first_fragment, packet.ts_ns);
    ++counters_.first;
  }
  switch (packet.frag) {
    case fragment_kind::none:
      return;
    case fragment_kind::first:
      remember(fragment_note{packet.key, packet.frag_id}, packet.ts_ns);
      ++counters_.first;
      return;
    case fragment_kind::later:
      if (const entry* e = find(packet.key, packet.frag_id, packet.ts_ns)) {
        packet.key.port_a = e->note.key.port_a;
        packet.key.port_b = e->note.key.port_b;
        ++counters_.resolved;
      } else {
        ++counters_.orphans;
      }
      return;
  }
}

void fragment_cache::remember(const fragment_note& note, uint64_t ts_ns) noexcept {
  const size_t sets = slots_.size() / kWays;
  const size_t set = set_of(datagram_hash(note.key, note.id, hash_), sets);
  entry* ways = &slots_[set * kWays];
  entry* victim = &ways[0];
  for (uint32_t w = 0; w < kWays; ++w) {
    entry& e = ways[w];
    if (e.used && e.note.id == note.id && same_datagram(e.note.key, note.key)) {
      victim = &e;  // a repeated first fragment refreshes its entry
      break;
    }
    if (!e.used) {
      if (victim->used) victim = &e;
    } else if (victim->used && e.ts_ns < victim->ts_ns) {
      victim = &e;
    }
  }
  victim->note = note;
  victim->ts_ns = ts_ns;
  victim->used = true;
}

const fragment_cache::entry* fragment_cache::find(const flow_key& key, uint32_t id,
                                                  uint64_t ts_ns) const noexcept {
  const size_t sets = slots_.size() / kWays;
  const size_t set = set_of(datagram_hash(key, id, hash_), sets);
  const entry* ways = &slots_[set * kWays];
  for (uint32_t w = 0; w < kWays; ++w) {
    const entry& e = ways[w];
    if (!e.used || e.note.id != id || !same_datagram(e.note.key, key)) continue;
    if (ts_ns > e.ts_ns && ts_ns - e.ts_ns > ttl_ns_) continue;  // too old to trust
    return &e;
  }
  return nullptr;
}

uint32_t fragment_cache::remembered() const noexcept {
  uint32_t n = 0;
  for (const entry& e : slots_) n += e.used;
  return n;
}

}  // namespace flower
