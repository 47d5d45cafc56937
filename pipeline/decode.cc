// The packet decoder. Shape: a link-layer switch picks the first protocol, a
// bounded layer-2 walker (VLAN, MPLS, PPPoE/PPP, pseudowire Ethernet) reaches
// an IP header, parse_ip reads it into an ip_layer, and a tunnel loop replaces
// that layer by an inner one while the payload is a tunnel we decapsulate and
// the inner IP header has its addresses. All positions are offsets into the
// frame; `cap_end` is never read at or past. docs/decoding.md has the rules.

#include "pipeline/decode.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "pipeline/detail/wire.h"

namespace flower {
namespace {

using namespace detail;

// Where the layer-2 walker starts, and where it has to end up.
enum class l2_state : uint8_t { ethernet, ethertype, mpls, ppp, ip };

// What a context expects of the IP header it hands on: ethertype 0x0800, PPP
// 0x0021, proto 4 go through a dissector that takes IPv4 or IPv6 by the
// version nibble; IPv6 contexts (0x86dd, proto 41, Teredo) only IPv6.
enum class ip_want : uint8_t { any, v4, v6 };

struct ip_layer {
  uint32_t off = 0;         // start of the IP header
  uint32_t l4_off = 0;      // transport header (after IPv6 extension headers)
  uint32_t l4_end = 0;      // captured end of the payload, clipped to the declared length
  uint64_t l4_rep_end = 0;  // end of the payload on the wire, clipped likewise
  uint32_t ip_bytes = 0;
  uint32_t frag_id = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint8_t version = 0;
  uint8_t proto = 0;
  fragment_kind frag = fragment_kind::none;
  bool l4_present = false;  // transport header reachable (not a later fragment, chain complete)
  bool has_udp_header = false;
};

struct walk_result {
  decode_status status;
  uint32_t off;   // IP header when status == ok
  ip_want want;
};

// Walks link-layer shims until an IP header. `vlan` (nullptr inside tunnels)
// receives the id of the first tag seen. Every loop iteration consumes bytes
// and a budget (tags, labels), so the walk ends on any input.
walk_result walk_to_ip(const uint8_t* d, uint32_t off, uint32_t end, l2_state state, uint16_t type,
                       ip_want want, uint16_t* vlan) noexcept {
  int tags = 0;
  int labels = 0;
  for (;;) {
    switch (state) {
      case l2_state::ip:
        return {decode_status::ok, off, want};

      case l2_state::ethernet:
        if (end - off < kEthHeader) return {decode_status::truncated_link, off, want};
        type = load_be16(d + off + 12);
        off += kEthHeader;
        state = l2_state::ethertype;
        break;

      case l2_state::ethertype:
        switch (type) {
          case kEthIpv4:
            return {decode_status::ok, off, ip_want::any};
          case kEthIpv6:
            return {decode_status::ok, off, ip_want::v6};
          case kEthVlan:
          case kEthQinq:
          case kEthQinqOld:
            if (++tags > kMaxVlanTags) return {decode_status::vlan_depth, off, want};
            if (end - off < kVlanTag) return {decode_status::truncated_vlan, off, want};
            if (vlan != nullptr) {
              *vlan = static_cast<uint16_t>(load_be16(d + off) & 0x0fff);
              vlan = nullptr;
            }
            type = load_be16(d + off + 2);
            off += kVlanTag;
            break;
          case kEthMplsUc:
          case kEthMplsMc:
            state = l2_state::mpls;
            break;
          case kEthPppoeSess:
            if (end - off < kPppoeHeader + 2) return {decode_status::truncated_pppoe, off, want};
            off += kPppoeHeader;
            state = l2_state::ppp;
            break;
          default:
            // An 802.3 length field: only LLC/SNAP with an ethertype goes on.
            if (type < kEthMaxLength && end - off >= 8 && d[off] == 0xaa && d[off + 1] == 0xaa &&
                d[off + 2] == 0x03 && d[off + 3] == 0 && d[off + 4] == 0 && d[off + 5] == 0) {
              type = load_be16(d + off + 6);
              off += 8;
              if (type < kEthMaxLength) return {decode_status::non_ip, off, want};
              break;
            }
            return {decode_status::non_ip, off, want};
        }
        break;

      case l2_state::mpls: {
        bool bottom = false;
        while (!bottom) {
          if (++labels > kMaxMplsLabels) return {decode_status::mpls_depth, off, want};
          if (end - off < kMplsLabel) return {decode_status::truncated_mpls, off, want};
          bottom = (d[off + 2] & 0x01) != 0;
          off += kMplsLabel;
        }
        if (off >= end) return {decode_status::truncated_mpls, off, want};
        switch (d[off] >> 4) {
          case 4:
            return {decode_status::ok, off, ip_want::v4};
          case 6:
            return {decode_status::ok, off, ip_want::v6};
          case 0:  // pseudowire control word, then Ethernet
            if (end - off < 4) return {decode_status::truncated_mpls, off, want};
            off += 4;
            state = l2_state::ethernet;
            break;
          default:
            return {decode_status::non_ip, off, want};
        }
        break;
      }

      case l2_state::ppp: {
        if (off >= end) return {decode_status::truncated_link, off, want};
        uint16_t proto;
        if (d[off] & 0x01) {  // protocol field compression: one byte
          proto = d[off];
          off += 1;
        } else {
          if (end - off < 2) return {decode_status::truncated_link, off, want};
          proto = load_be16(d + off);
          off += 2;
        }
        switch (proto) {
          case kPppIpv4:
            return {decode_status::ok, off, ip_want::any};
          case kPppIpv6:
            return {decode_status::ok, off, ip_want::v6};
          case kPppMplsUc:
          case kPppMplsMc:
            state = l2_state::mpls;
            break;
          default:
            return {decode_status::non_ip_ppp, off, want};
        }
        break;
      }
    }
  }
}

// Ports of the transport header at the start of the payload, as far as tshark
// reads them: TCP and SCTP need the 4 port bytes, UDP its whole 8-byte header.
inline void read_ports(const uint8_t* d, ip_layer& L) noexcept {
  if (!L.l4_present) return;
  uint32_t avail = L.l4_end - L.l4_off;
  switch (L.proto) {
    case kIpUdp:
      if (avail < kUdpHeader) return;
      L.has_udp_header = true;
      break;
    case kIpTcp:
    case kIpSctp:
      if (avail < 4) return;
      break;
    default:
      return;
  }
  L.sport = load_be16(d + L.l4_off);
  L.dport = load_be16(d + L.l4_off + 2);
}

// IPv4 options as tshark checks them: an option whose length byte is missing,
// below 2, past the end of the options, or too short for the option's fixed
// fields makes the IP dissector give up after the addresses, so the datagram
// keeps its addresses but shows no transport header. Cold: only with IHL > 5.
[[gnu::noinline, gnu::cold]] bool ipv4_options_valid(const uint8_t* opt, uint32_t len) noexcept {
  uint32_t i = 0;
  while (i < len) {
    const uint8_t type = opt[i];
    if (type == 0) return true;  // end of option list
    if (type == 1) {             // no-operation
      ++i;
      continue;
    }
    if (len - i < 2) return false;
    const uint32_t olen = opt[i + 1];
    if (olen < 2 || olen > len - i) return false;
    uint32_t need = 2;
    switch (type) {
      case 130: need = 11; break;  // security
      case 136: need = 4; break;   // stream identifier
      case 148: need = 4; break;   // router alert
      case 25: need = 8; break;    // quick-start
      case 7: case 131: case 137: need = 3; break;  // record route, loose/strict source route
      case 68: need = 4; break;    // timestamp
      case 134: need = 6; break;   // CIPSO
      default: break;
    }
    if (olen < need) return false;
    i += olen;
  }
  return true;
}

// Reads the IP header at `off`. ok means both addresses were captured.
decode_status parse_ip(const uint8_t* d, uint32_t off, uint32_t cap_end, uint64_t rep_end, ip_want want,
                       ip_layer& L) noexcept {
  if (off >= cap_end) return decode_status::truncated_ip;
  const uint8_t version = d[off] >> 4;
  L.off = off;
  if (version == 4 && want != ip_want::v6) {
    if (cap_end - off < kIpv4MinHeader) return decode_status::truncated_ip;
    const uint32_t hlen = (d[off] & 0x0fu) * 4;
    if (hlen < kIpv4MinHeader) return decode_status::bad_ipv4_header;
    const uint32_t total = load_be16(d + off + 2);
    uint64_t decl_end;
    if (total == 0) {  // TSO / BIG TCP: the length is what the wire had
      decl_end = std::max<uint64_t>(rep_end, cap_end);
      L.ip_bytes = static_cast<uint32_t>(std::min<uint64_t>(decl_end - off, UINT32_MAX));
    } else {
      if (total < hlen) return decode_status::bad_ipv4_length;
      decl_end = static_cast<uint64_t>(off) + total;
      L.ip_bytes = total;
    }
    const uint16_t frag = load_be16(d + off + 6);
    if (frag & 0x1fff) {
      L.frag = fragment_kind::later;
    } else if (frag & 0x2000) {
      L.frag = fragment_kind::first;
    }
    if (L.frag != fragment_kind::none) L.frag_id = load_be16(d + off + 4);
    L.version = 4;
    L.proto = d[off + 9];
    L.l4_off = off + hlen;
    L.l4_end = static_cast<uint32_t>(std::min<uint64_t>(cap_end, decl_end));
    L.l4_rep_end = std::min(rep_end, decl_end);
    L.l4_present = L.frag != fragment_kind::later && L.l4_off <= L.l4_end;
    if (hlen > kIpv4MinHeader && L.l4_present) {
      L.l4_present = ipv4_options_valid(d + off + kIpv4MinHeader, hlen - kIpv4MinHeader);
    }
    read_ports(d, L);
    return decode_status::ok;
  }
  if (version == 6 && want != ip_want::v4) {
    if (cap_end - off < kIpv6Header) return decode_status::truncated_ip;
    const uint32_t plen = load_be16(d + off + 4);
    L.ip_bytes = plen + kIpv6Header;
    // Payload length 0 is a jumbogram (or garbage): the payload runs to the end.
    const uint64_t decl_end =
        plen != 0 ? static_cast<uint64_t>(off) + kIpv6Header + plen : std::max<uint64_t>(rep_end, cap_end);
    const uint32_t lim = static_cast<uint32_t>(std::min<uint64_t>(cap_end, decl_end));
    L.version = 6;
    L.l4_end = lim;
    L.l4_rep_end = std::min(rep_end, decl_end);
    uint8_t nxt = d[off + 6];
    uint32_t q = off + kIpv6Header;
    bool complete = q <= lim;
    for (int n = 0; complete; ++n) {
      if (nxt != kIpHopByHop && nxt != kIpRouting && nxt != kIpDstOpts && nxt != kIpFragment) break;
      if (n == kMaxIpv6ExtHeaders) return decode_status::ipv6_ext_depth;
      if (nxt == kIpFragment) {
        if (lim - q < 8) {
          complete = false;
          break;
        }
        const uint16_t fo = load_be16(d + q + 2);
        L.frag_id = load_be32(d + q + 4);
        nxt = d[q];
        q += 8;
        if (fo >> 3) {
          L.frag = fragment_kind::later;
          complete = false;
        } else if (fo & 1) {
          L.frag = fragment_kind::first;
        } else {
          L.frag_id = 0;  // atomic fragment: a whole datagram
        }
        continue;
      }
      // Hop-by-Hop, Routing, Destination Options: 8 * (len + 1) bytes, all
      // captured or the chain stops at the value that pointed here.
      if (lim - q < 2 || lim - q < (d[q + 1] + 1u) * 8) {
        complete = false;
        break;
      }
      const uint32_t len = (d[q + 1] + 1u) * 8;
      nxt = d[q];
      q += len;
    }
    L.proto = nxt;
    L.l4_off = q;
    L.l4_present = complete;
    read_ports(d, L);
    return decode_status::ok;
  }
  return decode_status::bad_ip_version;
}

struct tunnel_entry {
  tunnel_kind kind = tunnel_kind::none;
  l2_state state = l2_state::ip;
  uint16_t type = 0;
  ip_want want = ip_want::any;
  uint32_t off = 0;
  uint32_t end = 0;      // captured end of the tunnel payload
  uint64_t rep_end = 0;  // its end on the wire
};

inline tunnel_kind udp_tunnel_of(uint16_t port) noexcept {
  switch (port) {
    case kPortVxlan: return tunnel_kind::vxlan;
    case kPortGtpU: return tunnel_kind::gtp_u;
    case kPortGeneve: return tunnel_kind::geneve;
    case kPortTeredo: return tunnel_kind::teredo;
    default: return tunnel_kind::none;
  }
}

bool gre_payload(const uint8_t* d, uint32_t g, uint32_t end, tunnel_entry& t) noexcept {
  if (end - g < 4) return false;
  const uint16_t flags = load_be16(d + g);
  if ((flags & 0x0007) != 0) return false;  // version 1 = PPTP: PPP inside, not descended
  const uint16_t ptype = load_be16(d + g + 2);
  uint32_t hl = 4;
  if (flags & 0xc000) hl += 4;  // checksum and/or routing present: checksum + offset word
  if (flags & 0x2000) hl += 4;  // key
  if (flags & 0x1000) hl += 4;  // sequence number
  if (flags & 0x4000) {         // RFC 1701 source route entries, up to a null entry
    for (int i = 0;; ++i) {
      if (i == kMaxGreSourceRoutes || end - g < hl + 4) return false;
      const uint16_t af = load_be16(d + g + hl);
      const uint8_t sre_len = d[g + hl + 3];
      hl += 4 + sre_len;
      if (af == 0 && sre_len == 0) break;
    }
  }
  if (end - g < hl) return false;
  uint32_t p = g + hl;
  t.kind = tunnel_kind::gre;
  switch (ptype) {
    case kEthIpv4: t.state = l2_state::ip; t.want = ip_want::any; break;
    case kEthIpv6: t.state = l2_state::ip; t.want = ip_want::v6; break;
    case kEthTeb: t.state = l2_state::ethernet; break;
    case kEthMplsUc:
    case kEthMplsMc: t.state = l2_state::mpls; break;
    case kEthErspan2:
      t.kind = tunnel_kind::erspan;
      t.state = l2_state::ethernet;
      if (flags & 0x1000) {  // type II has a sequence number and an 8-byte header; type I has neither
        if (end - p < kErspan2Header) return false;
        p += kErspan2Header;
      }
      break;
    case kEthErspan3:
      t.kind = tunnel_kind::erspan;
      t.state = l2_state::ethernet;
      if (end - p < kErspan3Header) return false;
      p += kErspan3Header + ((d[p + 11] & 0x01) ? kErspan3Platform : 0);
      if (p > end) return false;
      break;
    default:
      return false;
  }
  t.off = p;
  return true;
}

bool gtp_payload(const uint8_t* d, uint32_t u, uint32_t end, tunnel_entry& t) noexcept {
  if (end - u < kGtpHeader) return false;
  const uint8_t flags = d[u];
  if ((flags >> 5) != 1 || (flags & 0x10) == 0) return false;  // GTPv1, not GTP'
  if (d[u + 1] != 0xff) return false;                          // only G-PDU carries user IP
  uint32_t hl = kGtpHeader;
  if (flags & 0x07) {  // sequence / N-PDU / extension flag: 4 more bytes
    hl += 4;
    if (end - u < hl) return false;
    uint8_t next = (flags & 0x04) ? d[u + hl - 1] : 0;
    for (int i = 0; next != 0; ++i) {
      if (i == kMaxGtpExtHeaders || end - u < hl + 1) return false;
      const uint32_t len = d[u + hl] * 4u;
      if (len == 0 || end - u < hl + len) return false;
      next = d[u + hl + len - 1];
      hl += len;
    }
  }
  const uint32_t p = u + hl;
  if (p >= end) return false;
  switch (d[p] >> 4) {
    case 4: t.want = ip_want::v4; break;
    case 6: t.want = ip_want::v6; break;
    default: return false;
  }
  t.kind = tunnel_kind::gtp_u;
  t.state = l2_state::ip;
  t.off = p;
  return true;
}

bool teredo_payload(const uint8_t* d, uint32_t u, uint32_t end, tunnel_entry& t) noexcept {
  uint32_t p = u;
  if (end - p >= 4 && load_be16(d + p) == 0x0001) {  // authentication: id, auth value, nonce, confirmation
    p += 4 + d[p + 2] + d[p + 3] + 8 + 1;
    if (p > end) return false;
  }
  if (end - p >= 8 && load_be16(d + p) == 0x0000) p += 8;  // origin indication
  t.kind = tunnel_kind::teredo;
  t.state = l2_state::ip;
  t.want = ip_want::v6;
  t.off = p;
  return true;
}

bool udp_payload(const uint8_t* d, const ip_layer& L, tunnel_entry& t) noexcept {
  if (!L.has_udp_header) return false;
  // tshark tries the lower port first.
  const uint16_t lo = std::min(L.sport, L.dport);
  const uint16_t hi = std::max(L.sport, L.dport);
  tunnel_kind kind = udp_tunnel_of(lo);
  if (kind == tunnel_kind::none) kind = udp_tunnel_of(hi);
  if (kind == tunnel_kind::none) return false;
  // The UDP length bounds the payload. tshark hands no payload on when it is
  // below 8 (e.g. 0 for BIG TCP) or beyond the IP payload, except in a
  // fragment, whose IP payload is only part of the datagram.
  if (L.frag == fragment_kind::none) {
    const uint32_t ulen = load_be16(d + L.l4_off + 4);
    if (ulen < kUdpHeader || L.l4_off + ulen > L.l4_rep_end) return false;
    t.end = std::min(t.end, L.l4_off + ulen);
    t.rep_end = L.l4_off + ulen;
  }
  const uint32_t u = L.l4_off + kUdpHeader;
  const uint32_t end = t.end;
  switch (kind) {
    case tunnel_kind::vxlan:
      if (end - u < kVxlanHeader) return false;
      t.kind = tunnel_kind::vxlan;
      t.state = l2_state::ethernet;
      t.off = u + kVxlanHeader;
      return true;
    case tunnel_kind::geneve: {
      if (end - u < kGeneveHeader) return false;
      const uint32_t hl = kGeneveHeader + (d[u] & 0x3fu) * 4;
      if (end - u < hl) return false;
      t.kind = tunnel_kind::geneve;
      t.off = u + hl;
      switch (load_be16(d + u + 2)) {
        case kEthTeb: t.state = l2_state::ethernet; return true;
        case kEthIpv4: t.state = l2_state::ip; t.want = ip_want::any; return true;
        case kEthIpv6: t.state = l2_state::ip; t.want = ip_want::v6; return true;
        default: return false;
      }
    }
    case tunnel_kind::gtp_u:
      return gtp_payload(d, u, end, t);
    case tunnel_kind::teredo:
      return teredo_payload(d, u, end, t);
    default:
      return false;
  }
}

// The payload of L if it is a tunnel we decapsulate.
bool tunnel_payload(const uint8_t* d, const ip_layer& L, tunnel_entry& t) noexcept {
  t.end = L.l4_end;
  t.rep_end = L.l4_rep_end;
  switch (L.proto) {
    case kIpIpip:
    case kIpIpv6:
      t.kind = tunnel_kind::ip_in_ip;
      t.state = l2_state::ip;
      t.want = L.proto == kIpIpv6 ? ip_want::v6 : ip_want::any;
      t.off = L.l4_off;
      return true;
    case kIpGre:
      return gre_payload(d, L.l4_off, L.l4_end, t);
    case kIpUdp:
      return udp_payload(d, L, t);
    default:
      return false;
  }
}

inline void set_addresses(const uint8_t* d, const ip_layer& L, flow_key& k) noexcept {
  k.ip_version = L.version;
  k.proto = L.proto;
  k.port_a = L.sport;
  k.port_b = L.dport;
  if (L.version == 4) {
    k.set_v4(k.addr_a, d + L.off + 12);
    k.set_v4(k.addr_b, d + L.off + 16);
  } else {
    std::memcpy(k.addr_a.data(), d + L.off + 8, 16);
    std::memcpy(k.addr_b.data(), d + L.off + 24, 16);
  }
}

}  // namespace

decode_status detail::decode_general(const packet_view& packet, const decode_options& options,
                                     decoded_packet& out) noexcept {
  out = decoded_packet{};
  out.ts_ns = packet.ts_ns;
  out.frame_bytes = packet.wire_len;

  const uint8_t* d = packet.data;
  uint32_t end = d != nullptr ? packet.caplen : 0;
  uint64_t rep_end = std::max(packet.wire_len, end);
  uint32_t off = 0;
  uint16_t type = 0;
  l2_state state = l2_state::ip;
  ip_want want = ip_want::any;

  switch (packet.link) {
    case link_type::ethernet:
      state = l2_state::ethernet;
      break;
    case link_type::linux_sll:
      if (end < kSllHeader) return decode_status::truncated_link;
      if (load_be16(d + 2) == kArphrdNetlink) return decode_status::non_ip;
      type = load_be16(d + 14);
      off = kSllHeader;
      state = l2_state::ethertype;
      break;
    case link_type::linux_sll2:
      if (end < kSll2Header) return decode_status::truncated_link;
      if (load_be16(d + 8) == kArphrdNetlink) return decode_status::non_ip;
      type = load_be16(d);
      off = kSll2Header;
      state = l2_state::ethertype;
      break;
    case link_type::raw:
      break;
    case link_type::ipv4:
      want = ip_want::v4;
      break;
    case link_type::ipv6:
      want = ip_want::v6;
      break;
    case link_type::null:
    case link_type::loop: {
      if (end < 4) return decode_status::truncated_link;
      uint32_t af = packet.link == link_type::loop ? load_be32(d) : load_le32(d);
      if (af & 0xffff0000u) af = __builtin_bswap32(af);  // written on a host of the other order
      off = 4;
      if (af == kBsdAfInet) {
        want = ip_want::v4;
      } else if (af == kBsdAfInet6Bsd || af == kBsdAfInet6FreeBsd || af == kBsdAfInet6Darwin) {
        want = ip_want::v6;
      } else {
        return decode_status::non_ip;
      }
      break;
    }
    case link_type::ppp:
      if (end < 2) return decode_status::truncated_link;
      if (d[0] == 0xff && d[1] == 0x03) {
        off = 2;
        state = l2_state::ppp;
      } else if ((d[0] == 0x0f || d[0] == 0x8f) && d[1] == 0x00) {  // Cisco HDLC framing
        if (end < 4) return decode_status::truncated_link;
        type = load_be16(d + 2);
        off = 4;
        state = l2_state::ethertype;
      } else {
        state = l2_state::ppp;
      }
      break;
    case link_type::nflog: {
      if (end < kNflogHeader) return decode_status::truncated_link;
      const uint8_t family = d[0];
      if (family == kAfInet) {
        want = ip_want::v4;
      } else if (family == kAfInet6Linux) {
        want = ip_want::v6;
      } else {
        return decode_status::nflog_non_ip;
      }
      // TLVs in the capturing host's order; take little-endian unless the
      // first length only makes sense big-endian.
      off = kNflogHeader;
      bool big = false;
      if (end - off >= 4) {
        const uint32_t le = load_le16(d + off);
        const uint32_t be = load_be16(d + off);
        big = (le < 4 || le > end - off) && be >= 4 && be <= end - off;
      }
      bool found = false;
      while (end - off >= 4) {
        const uint32_t len = big ? load_be16(d + off) : load_le16(d + off);
        const uint16_t tlv = static_cast<uint16_t>((big ? load_be16(d + off + 2) : load_le16(d + off + 2)) & 0x3fff);
        if (len < 4) return decode_status::bad_nflog;
        if (tlv == kNflogPayload) {
          rep_end = static_cast<uint64_t>(off) + len;
          end = static_cast<uint32_t>(std::min<uint64_t>(end, rep_end));
          off += 4;
          found = true;
          break;
        }
        const uint32_t step = (len + 3) & ~3u;
        if (step > end - off) break;
        off += step;
      }
      if (!found) return decode_status::bad_nflog;
      break;
    }
    default:
      return decode_status::unknown_link_type;
  }

  uint16_t vlan = 0;
  const walk_result w = walk_to_ip(d, off, end, state, type, want, &vlan);
  if (w.status != decode_status::ok) return w.status;
  ip_layer L;
  if (decode_status s = parse_ip(d, w.off, end, rep_end, w.want, L); s != decode_status::ok) return s;
  out.key.vlan = vlan;

  if (options.decapsulate_tunnels) {
    for (int depth = 0; depth < kMaxTunnelDepth && L.l4_present; ++depth) {
      tunnel_entry t;
      if (!tunnel_payload(d, L, t)) break;
      const walk_result iw = walk_to_ip(d, t.off, t.end, t.state, t.type, t.want, nullptr);
      if (iw.status != decode_status::ok) break;
      ip_layer inner;
      if (parse_ip(d, iw.off, t.end, t.rep_end, iw.want, inner) != decode_status::ok) break;
      if (L.frag == fragment_kind::first && !out.has_outer_first_fragment) {
        out.has_outer_first_fragment = true;
        set_addresses(d, L, out.outer_first_fragment.key);
        out.outer_first_fragment.key.vlan = out.key.vlan;
        out.outer_first_fragment.id = L.frag_id;
      }
      if (depth == 0) out.tunnel = t.kind;
      L = inner;
    }
  }

  set_addresses(d, L, out.key);
  out.ip_bytes = L.ip_bytes;
  out.frag = L.frag;
  out.frag_id = L.frag_id;
  if (L.l4_present) {
    const uint32_t avail = L.l4_end - L.l4_off;
    const uint8_t* l4 = d + L.l4_off;
    switch (L.proto) {
      case kIpTcp:
        if (avail > kTcpFlagsOffset) out.tcp_flags = l4[kTcpFlagsOffset];
        break;
      case kIpIcmp:
      case kIpIcmpv6:
        if (avail >= 2) out.icmp_type_code = load_be16(l4);
        break;
      case kIpEsp:
        if (avail >= 4) out.spi = load_be32(l4);
        break;
      case kIpAh:
        if (avail >= 8) out.spi = load_be32(l4 + 4);
        break;
      default:
        break;
    }
  }
  return decode_status::ok;
}

}  // namespace flower
