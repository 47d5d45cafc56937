#pragma once
// flow_key: the identity of a bidirectional flow, and the hashes over it.
//
// A key names two endpoints `a` and `b` (address + port), the transport
// protocol, the outer VLAN id and the IP version. IPv4 addresses are stored
// IPv4-mapped (::ffff:a.b.c.d) so one layout serves both families; the
// version byte keeps a real IPv6 ::ffff:0:0/96 address distinct.
//
// Orientation: a decoder fills a key in wire order (a = source of the packet).
// The flow table stores keys in canonical order (a <= b by address, then
// port), so both directions of a conversation meet in one slot; `canonicalize`
// returns whether it swapped. `symmetric_hash` is the same for both
// orientations by construction.
//
// For ICMP and ICMPv6 the ports carry type and code the NetFlow way
// (src_port = 0, dst_port = type << 8 | code) in flow records only; in the key
// both ports are 0 so all ICMP between two hosts is one flow, like the
// reference and like most meters' default aggregation.

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <string>

namespace flower {

struct alignas(8) flow_key {
  std::array<uint8_t, 16> addr_a{};
  std::array<uint8_t, 16> addr_b{};
  uint16_t port_a = 0;
  uint16_t port_b = 0;
  uint16_t vlan = 0;      // outer 802.1Q/802.1ad id, 0 when untagged
  uint8_t proto = 0;      // IP protocol number (innermost IP header)
  uint8_t ip_version = 0; // 4 or 6; 0 marks an unused key

  friend bool operator==(const flow_key& x, const flow_key& y) noexcept {
    return std::memcmp(&x, &y, sizeof(flow_key)) == 0;
  }

  bool is_v4() const noexcept { return ip_version == 4; }

  void set_v4(std::array<uint8_t, 16>& dst, const uint8_t* src4) noexcept {
    std::memset(dst.data(), 0, 10);
    dst[10] = 0xff;
    dst[11] = 0xff;
    std::memcpy(dst.data() + 12, src4, 4);
  }

  // Swap endpoints a and b.
  void swap_endpoints() noexcept {
    std::swap(addr_a, addr_b);
    std::swap(port_a, port_b);
  }

  // Put the key in canonical order (a <= b). Returns true if it swapped.
  bool canonicalize() noexcept {
    int c = std::memcmp(addr_a.data(), addr_b.data(), 16);
    if (c > 0 || (c == 0 && port_a > port_b)) {
      swap_endpoints();
      return true;
    }
    return false;
  }
};
static_assert(sizeof(flow_key) == 40, "flow_key layout is part of the table's memory budget");

// The secret of the flow hashes. With fixed constants, keys crafted to share
// one index bucket make lookups and deletes linear (hash flooding); keyed by
// a per-run seed, an attacker who does not know the seed cannot aim at a
// bucket. Each engine draws one (random_hash_seed) unless given one
// (engine_config::hash_seed, to repeat a run), and every hash of a key -
// table index, shard choice, fragment cache - uses it.
struct hash_key {
  uint64_t k[6];
  static hash_key from_seed(uint64_t seed) noexcept;  // any seed, 0 included
};

// 64 bits from the kernel's random source (getrandom). Throws
// std::system_error if there is none.
uint64_t random_hash_seed();

// 64-bit mixing hash over a canonical key (fast, not cryptographic). Equal
// keys give equal hashes; callers canonicalize first so both directions hash
// the same.
uint64_t key_hash(const flow_key& canonical, const hash_key& key) noexcept;

// Hash over (addresses as an unordered pair, proto, vlan) only: the same for
// both directions and for every fragment of a datagram, so it is what the
// pipeline shards by (a non-first fragment has no ports until resolved).
uint64_t shard_hash(const flow_key& any_orientation, const hash_key& key) noexcept;

// Text form of an address as tshark/RFC 5952 print it ("10.0.0.1", "2001:db8::1").
std::string address_string(const std::array<uint8_t, 16>& addr, uint8_t ip_version);

}  // namespace flower
