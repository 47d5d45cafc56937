#pragma once
// The decoder's straight-line path for the common frames, inline so that
// decode_packet() costs no call (and no prologue for the general path's
// registers) when a frame takes it. Private to pipeline/: include
// "pipeline/decode.h".

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pipeline/detail/wire.h"

namespace flower::detail {

inline bool is_udp_tunnel_port(uint16_t port) noexcept {
  return port == kPortVxlan || port == kPortGtpU || port == kPortGeneve || port == kPortTeredo;
}

// The common cases in one straight line: Ethernet with at most one 802.1Q
// tag, then IPv4 without options or fragmentation or IPv6 without extension
// headers, then a TCP header captured up to its flags or a whole UDP header on
// a non-tunnel port. Anything else returns false and takes the general path,
// which gives the same answer for these frames (the DecodeFastPath test).
[[gnu::always_inline]] inline bool decode_plain(const packet_view& packet, decoded_packet& out) noexcept {
  const uint8_t* d = packet.data;
  const uint32_t cap = packet.caplen;
  if (packet.link != link_type::ethernet || cap < kEthHeader + kIpv4MinHeader + 8 || d == nullptr) return false;
  uint32_t ip = kEthHeader;
  uint16_t type = load_be16(d + 12);
  uint16_t vlan = 0;
  if (type == kEthVlan) {
    vlan = static_cast<uint16_t>(load_be16(d + 14) & 0x0fff);
    type = load_be16(d + 16);
    ip += kVlanTag;
  }
  uint32_t l4;
  uint32_t decl_end;
  uint32_t ip_bytes;
  uint8_t proto;
  if (type == kEthIpv4) {
    l4 = ip + kIpv4MinHeader;
    if (cap < l4 + 8 || d[ip] != 0x45) return false;
    ip_bytes = load_be16(d + ip + 2);
    if (ip_bytes < kIpv4MinHeader || (load_be16(d + ip + 6) & 0x3fff) != 0) return false;
    decl_end = ip + ip_bytes;
    proto = d[ip + 9];
  } else if (type == kEthIpv6) {
    l4 = ip + kIpv6Header;
    if (cap < l4 + 8 || (d[ip] >> 4) != 6) return false;
    const uint32_t plen = load_be16(d + ip + 4);
    if (plen == 0) return false;
    ip_bytes = plen + kIpv6Header;
    decl_end = ip + ip_bytes;
    proto = d[ip + 6];
  } else {
    return false;
  }
  const uint32_t avail = std::min(cap, decl_end) - l4;  // transport bytes captured and declared (decl_end > l4)
  const uint16_t sport = load_be16(d + l4);
  const uint16_t dport = load_be16(d + l4 + 2);
  if (proto == kIpTcp) {
    if (avail < 14) return false;
  } else if (proto == kIpUdp) {
    if (avail < kUdpHeader || is_udp_tunnel_port(sport) || is_udp_tunnel_port(dport)) return false;
  } else {
    return false;
  }
  // Every field written once, straight from registers: no zeroing of the
  // whole struct first. `outer_first_fragment` is left as it is: it means
  // something only when has_outer_first_fragment is set, never here, and
  // `frag_id` only when frag != none: neither of the second cache line's
  // fields is written, so the fast path touches one line per packet.
  // Five 8-byte stores straight from registers (an array on the stack
  // copied as 16-byte words stalled on store forwarding: perf put a third of
  // the decoder's samples there).
  uint64_t w0, w1, w2, w3;
  if (type == kEthIpv4) {
    uint32_t src, dst;
    std::memcpy(&src, d + ip + 12, 4);
    std::memcpy(&dst, d + ip + 16, 4);
    w0 = 0;  // ::ffff:a.b.c.d, as flow_key::set_v4 writes it
    w1 = uint64_t{0xffff0000u} | uint64_t{src} << 32;
    w2 = 0;
    w3 = uint64_t{0xffff0000u} | uint64_t{dst} << 32;
  } else {
    std::memcpy(&w0, d + ip + 8, 8);
    std::memcpy(&w1, d + ip + 16, 8);
    std::memcpy(&w2, d + ip + 24, 8);
    std::memcpy(&w3, d + ip + 32, 8);
  }
  const uint64_t w4 = uint64_t{sport} | uint64_t{dport} << 16 | uint64_t{vlan} << 32 | uint64_t{proto} << 48 |
                      uint64_t{type == kEthIpv4 ? 4u : 6u} << 56;
  static_assert(sizeof(flow_key) == 40 && offsetof(flow_key, port_a) == 32 && offsetof(flow_key, port_b) == 34 &&
                offsetof(flow_key, vlan) == 36 && offsetof(flow_key, proto) == 38 &&
                offsetof(flow_key, ip_version) == 39);
  auto* key = reinterpret_cast<uint8_t*>(&out.key);
  std::memcpy(key, &w0, 8);
  std::memcpy(key + 8, &w1, 8);
  std::memcpy(key + 16, &w2, 8);
  std::memcpy(key + 24, &w3, 8);
  std::memcpy(key + 32, &w4, 8);
  // The rest of the line in two more 8-byte stores: ip_bytes | frame_bytes,
  // then spi (0) | icmp_type_code (0) | tcp_flags | the bit-field byte (0:
  // not a fragment, no tunnel, no note). Assigning the bit-fields one by
  // one would read-modify-write that byte three times.
  static_assert(offsetof(decoded_packet, ts_ns) == 40 && offsetof(decoded_packet, ip_bytes) == 48 &&
                offsetof(decoded_packet, frame_bytes) == 52 && offsetof(decoded_packet, spi) == 56 &&
                offsetof(decoded_packet, icmp_type_code) == 60 && offsetof(decoded_packet, tcp_flags) == 62 &&
                offsetof(decoded_packet, frag_id) == 64);
  const uint64_t flags = proto == kIpTcp ? d[l4 + 13] : 0;
  const uint64_t sizes = uint64_t{ip_bytes} | uint64_t{packet.wire_len} << 32;
  const uint64_t tail = flags << 48;
  auto* line = reinterpret_cast<uint8_t*>(&out);
  std::memcpy(line + 40, &packet.ts_ns, 8);
  std::memcpy(line + 48, &sizes, 8);
  std::memcpy(line + 56, &tail, 8);
  return true;
}


}  // namespace flower::detail
