#pragma once
// The decoder's straight-line path for the common frames, inline so that
// decode_packet() costs no call (and no prologue for the general path's
// registers) when a frame takes it. Private to pipeline/: include
// "pipeline/decode.h".

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "pipeline/detail/wire.h"

namespace flower::detail {

// Whether either port of `ports` (source | destination << 16) is one the
// general path decodes as a UDP tunnel, with no branch. With SSE2 both
// ports meet all four tunnel ports in one vector compare: eight scalar
// compares ran the table's loop short of registers.
inline bool has_udp_tunnel_port(uint32_t ports) noexcept {
#if defined(__SSE2__)
  const __m128i both = _mm_shuffle_epi32(_mm_cvtsi32_si128(static_cast<int>(ports)), 0);
  const __m128i tunnels = _mm_setr_epi16(kPortVxlan, kPortVxlan, kPortGtpU, kPortGtpU, kPortGeneve, kPortGeneve,
                                         kPortTeredo, kPortTeredo);
  return _mm_movemask_epi8(_mm_cmpeq_epi16(both, tunnels)) != 0;
#else
  const auto tunnel = [](uint32_t p) {
    return (p == kPortVxlan) | (p == kPortGtpU) | (p == kPortGeneve) | (p == kPortTeredo);
  };
  return tunnel(ports & 0xffff) | tunnel(ports >> 16);
#endif
}

// What the straight-line path needs of a transport protocol, by protocol
// number, so that no branch depends on the protocol: in mixed traffic it is
// a coin toss to the branch predictor (a branch on it cost 4 ns a packet
// at half UDP). Low 24 bits: transport bytes needed (TCP up to its flags,
// a UDP header, more than any packet holds for the rest); top 8: the mask
// for the TCP flags byte.
inline constexpr uint32_t kPlainNeedNever = 0xffffff;  // > any avail (at most 65535)
inline constexpr std::array<uint32_t, 256> kPlainTransport = [] {
  std::array<uint32_t, 256> t{};
  t.fill(kPlainNeedNever);
  t[kIpTcp] = (kTcpFlagsOffset + 1) | 0xffu << 24;
  t[kIpUdp] = kUdpHeader;
  return t;
}();

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
  const uint32_t ports = uint32_t{load_be16(d + l4)} | uint32_t{load_be16(d + l4 + 2)} << 16;
  const uint32_t transport = kPlainTransport[proto];
  if (avail < (transport & kPlainNeedNever)) return false;  // also: neither TCP nor UDP
  // For any protocol, so the test needs none: a TCP flow on a tunnel port
  // takes the general path, which meters it the same way.
  if (has_udp_tunnel_port(ports)) return false;
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
  const uint64_t w4 = uint64_t{ports} | uint64_t{vlan} << 32 | uint64_t{proto} << 48 |
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
  // Read in bounds for UDP too (cap >= l4 + 8), then masked: no branch.
  const uint64_t flags = d[std::min(l4 + kTcpFlagsOffset, cap - 1)] & (transport >> 24);
  const uint64_t sizes = uint64_t{ip_bytes} | uint64_t{packet.wire_len} << 32;
  const uint64_t tail = flags << 48;
  auto* line = reinterpret_cast<uint8_t*>(&out);
  std::memcpy(line + 40, &packet.ts_ns, 8);
  std::memcpy(line + 48, &sizes, 8);
  std::memcpy(line + 56, &tail, 8);
  return true;
}


}  // namespace flower::detail
