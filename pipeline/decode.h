#pragma once
// The packet decoder: one captured frame in, one flow key and its metering
// facts out. Stateless and noexcept: it can run on any thread, in any order.
//
//   decode_options opt;                  // tunnels decapsulated by default
//   decoded_packet d;
//   decode_status s = decode_packet(view, opt, d);
//   if (s == decode_status::ok) ...      // d.key is in wire order
//
// Rules (docs/decoding.md has the full text):
// - The key comes from the innermost IP header reachable through tunnels
//   (IP-in-IP, GRE with IP/Ethernet/MPLS/ERSPAN, VXLAN 4789, GTP-U 2152,
//   Geneve 6081, Teredo 3544) when `decapsulate_tunnels` is on; never from
//   the packet quoted inside an ICMP error. A tunnel whose payload is not IP,
//   or is cut before the inner addresses, meters the outer flow.
// - `ip_bytes` is the length the chosen IP header declares (IPv4 total
//   length, IPv6 payload length + 40), `frame_bytes` the wire length.
// - The decoder never reads past caplen; every failure is a decode_status.
// - Fragments are reported, not resolved: a non-first fragment comes out
//   with ports 0 and `frag == fragment_kind::later`; the shard's
//   fragment_cache (which saw the first fragment) fills in the ports.

#include <cstddef>
#include <cstdint>
#include <span>

#include "pipeline/decode_status.h"
#include "pipeline/flow_key.h"
#include "pipeline/packet.h"

namespace flower {

inline constexpr int kMaxVlanTags = 8;
inline constexpr int kMaxMplsLabels = 16;
inline constexpr int kMaxIpv6ExtHeaders = 16;
inline constexpr int kMaxTunnelDepth = 4;
inline constexpr int kMaxGtpExtHeaders = 8;   // GTP-U extension headers after the fixed header
inline constexpr int kMaxGreSourceRoutes = 8; // GRE (RFC 1701) source route entries

enum class fragment_kind : uint8_t { none, first, later };

// Outermost encapsulation that was removed to reach the metered IP header.
enum class tunnel_kind : uint8_t { none, ip_in_ip, gre, vxlan, geneve, gtp_u, teredo, erspan };

struct decode_options {
  bool decapsulate_tunnels = true;
};

// Identity of one IP datagram's fragments: (version, src, dst, proto, id).
// `key` holds the addresses in wire order and, for a first fragment, the
// transport ports it carried.
struct fragment_note {
  flow_key key;
  uint32_t id = 0;
};

// The first cache line holds everything the flow table reads; the fields
// after it matter only for fragments. One line per packet on the fast path,
// so a batch of 256 takes 16 KiB of L1 instead of 30.
struct alignas(64) decoded_packet {
  flow_key key;              // wire order: a = source, b = destination
  uint64_t ts_ns = 0;
  uint32_t ip_bytes = 0;     // as declared by the metered IP header
  uint32_t frame_bytes = 0;  // original wire length of the frame
  uint32_t spi = 0;          // ESP/AH SPI of the metered header, 0 otherwise
  uint16_t icmp_type_code = 0; // ICMP/ICMPv6 type << 8 | code
  uint8_t tcp_flags = 0;
  fragment_kind frag : 2 = fragment_kind::none;
  tunnel_kind tunnel : 4 = tunnel_kind::none;
  // An enclosing IP layer was the first fragment of a datagram whose later
  // fragments will meter the outer flow: remember its ports for them.
  bool has_outer_first_fragment : 1 = false;
  // Set by the multi-core dispatcher on a copy of such a packet sent to the
  // shard that owns the outer flow, so the note reaches the shard its later
  // fragments go to. The copy is remembered there, never metered.
  bool note_only : 1 = false;
  // Second line: read only when frag != none or has_outer_first_fragment.
  uint32_t frag_id = 0;      // IPv4 id / IPv6 fragment identification; valid when frag != none
  fragment_note outer_first_fragment;
};
static_assert(offsetof(decoded_packet, frag_id) == 64, "the flow table's fields fill exactly one cache line");

namespace detail {
// Everything decode_plain does not take: every link type, stack and tunnel.
decode_status decode_general(const packet_view& packet, const decode_options& options, decoded_packet& out) noexcept;
inline bool decode_plain(const packet_view& packet, decoded_packet& out) noexcept;  // detail/decode_plain.h
}  // namespace detail

[[gnu::always_inline]] inline decode_status decode_packet(const packet_view& packet, const decode_options& options,
                                   decoded_packet& out) noexcept {
  if (detail::decode_plain(packet, out)) [[likely]]
    return decode_status::ok;
  return detail::decode_general(packet, options, out);
}

}  // namespace flower

#include "pipeline/detail/decode_plain.h"  // decode_plain, inline
