#pragma once
// A hostile traffic mix for the engine (tests/hostile_test.cc and
// bench/bench_hostile.cc): fragment floods (first fragments whose datagram
// never completes, later fragments whose first never came, IPv4 and IPv6),
// IPv6 extension-header chains at and beyond kMaxIpv6ExtHeaders, tunnels
// nested beyond kMaxTunnelDepth, zero-length and truncated frames, with
// some ordinary flows in between. Every frame says what the engine must
// make of it, so a test can check the ledger line by line. Test-only:
// allocates freely (once, before the clock or the allocation count starts).

#include <cstdint>
#include <cstdio>
#include <iterator>
#include <string>
#include <vector>

#include "pipeline/decode.h"
#include "tests/packet_builder.h"

namespace flower::test {

enum class hostile_kind : uint8_t {
  ordinary,         // UDP between a few hosts
  first_fragment,   // offset 0, more fragments: remembered, never completed
  orphan_fragment,  // offset > 0, its first fragment never sent
  v6_ext_at_limit,  // kMaxIpv6ExtHeaders extension headers, then UDP: decodes
  v6_ext_beyond,    // one more: ipv6_ext_depth
  tunnel_nest,      // IP-in-IP nested past kMaxTunnelDepth: decodes to the limit
  zero_length,      // caplen 0: truncated_link
  truncated,        // cut inside the IP header: truncated_ip
  count
};

struct hostile_mix {
  std::vector<frame> frames;
  std::vector<hostile_kind> kinds;
  std::vector<packet_view> views;  // over `frames`, 1 us apart from t0_ns
  uint64_t of(hostile_kind k) const {
    uint64_t n = 0;
    for (hostile_kind x : kinds) n += x == k;
    return n;
  }
};

inline std::string v4(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 255) + "." + std::to_string(a >> 8 & 255) + "." +
         std::to_string(a & 255);
}

inline std::string v6(uint32_t a) {
  char text[64];
  std::snprintf(text, sizeof text, "2001:db8::%x:%x", a >> 16, a & 0xffff);
  return text;
}

// The frame for one hostile packet; `n` varies addresses, ids and ports so
// a flood is many datagrams and many flows, not one.
inline frame hostile_frame(hostile_kind kind, uint32_t n) {
  const uint32_t src = 0x0a000000u | (n & 0xffffff), dst = 0xc0000201u;
  const auto id = static_cast<uint16_t>(n * 7 + 1);
  const auto port = static_cast<uint16_t>(1024 + n % 60000);
  packet_builder b;
  switch (kind) {
    case hostile_kind::ordinary:
      return b.eth(0x0800).ipv4(v4(0x0a010000u | (n % 64)), v4(0x0a020001u), 17).udp(port % 16 + 5000, 53).payload(20).build();
    case hostile_kind::first_fragment:
      if (n % 2 == 0) {
        ipv4_options o;
        o.id = id;
        o.more_fragments = true;
        return b.eth(0x0800).ipv4(v4(src), v4(dst), 17, o).udp(port, 53).payload(24).build();
      }
      return b.eth(0x86dd).ipv6(v6(n), v6(1), 44).ipv6_frag(17, 0, true, n).udp(port, 53).payload(24).build();
    case hostile_kind::orphan_fragment:
      if (n % 2 == 0) {
        ipv4_options o;
        o.id = static_cast<uint16_t>(id ^ 0x8000);
        o.frag_offset = 185;
        return b.eth(0x0800).ipv4(v4(src), v4(dst), 17, o).payload(32).build();
      }
      return b.eth(0x86dd).ipv6(v6(n), v6(1), 44).ipv6_frag(17, 185, false, n ^ 0x80000000u).payload(32).build();
    case hostile_kind::v6_ext_at_limit:
    case hostile_kind::v6_ext_beyond: {
      const int headers = kMaxIpv6ExtHeaders + (kind == hostile_kind::v6_ext_beyond ? 1 : 0);
      b.eth(0x86dd).ipv6(v6(n), v6(2), 60);
      for (int i = 0; i < headers; ++i) b.ipv6_ext(i + 1 < headers ? 60 : 17);
      return b.udp(port, 53).payload(8).build();
    }
    case hostile_kind::tunnel_nest: {
      b.eth(0x0800);
      for (int i = 0; i < kMaxTunnelDepth + 2; ++i) b.ipv4(v4(src + static_cast<uint32_t>(i)), v4(dst), 4);
      return b.ipv4(v4(src), v4(dst), 17).udp(port, 53).payload(8).build();
    }
    case hostile_kind::zero_length:
      return frame{};
    case hostile_kind::truncated: {
      frame f = b.eth(0x0800).ipv4(v4(src), v4(dst), 6).tcp(port, 443).build();
      f.bytes.resize(14 + 8 + n % 11);  // inside the IPv4 header, before the addresses end
      return f;
    }
    case hostile_kind::count:
      break;
  }
  return frame{};
}

// `packets` frames: a third ordinary, the rest hostile in a fixed rotation.
inline hostile_mix make_hostile_mix(size_t packets, uint64_t t0_ns) {
  static constexpr hostile_kind rotation[] = {
      hostile_kind::ordinary,       hostile_kind::first_fragment, hostile_kind::orphan_fragment,
      hostile_kind::ordinary,       hostile_kind::first_fragment, hostile_kind::v6_ext_at_limit,
      hostile_kind::ordinary,       hostile_kind::orphan_fragment, hostile_kind::v6_ext_beyond,
      hostile_kind::ordinary,       hostile_kind::tunnel_nest,    hostile_kind::zero_length,
      hostile_kind::ordinary,       hostile_kind::first_fragment, hostile_kind::truncated,
  };
  hostile_mix m;
  m.frames.reserve(packets);
  for (size_t i = 0; i < packets; ++i) {
    const hostile_kind k = rotation[i % std::size(rotation)];
    m.frames.push_back(hostile_frame(k, static_cast<uint32_t>(i)));
    m.kinds.push_back(k);
  }
  for (size_t i = 0; i < packets; ++i) {
    packet_view v = m.frames[i].view();
    v.ts_ns = t0_ns + i * 1000;
    m.views.push_back(v);
  }
  return m;
}

}  // namespace flower::test
