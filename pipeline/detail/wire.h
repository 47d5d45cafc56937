#pragma once
// Private to the decoder: protocol numbers and unaligned big/little-endian
// loads. Every load assumes the caller has already checked the length; the
// decoder's rule is "check, then load, then advance".

#include <cstdint>
#include <cstring>

namespace flower::detail {

// Ethertypes (also SLL/SLL2 protocol fields and GRE protocol types).
inline constexpr uint16_t kEthIpv4 = 0x0800;
inline constexpr uint16_t kEthIpv6 = 0x86dd;
inline constexpr uint16_t kEthVlan = 0x8100;        // 802.1Q
inline constexpr uint16_t kEthQinq = 0x88a8;        // 802.1ad
inline constexpr uint16_t kEthQinqOld = 0x9100;     // pre-standard QinQ, a VLAN tag for tshark
inline constexpr uint16_t kEthMplsUc = 0x8847;
inline constexpr uint16_t kEthMplsMc = 0x8848;
inline constexpr uint16_t kEthPppoeDisc = 0x8863;
inline constexpr uint16_t kEthPppoeSess = 0x8864;
inline constexpr uint16_t kEthTeb = 0x6558;         // transparent Ethernet bridging (GRE, Geneve)
inline constexpr uint16_t kEthErspan2 = 0x88be;
inline constexpr uint16_t kEthErspan3 = 0x22eb;
inline constexpr uint16_t kEthMaxLength = 0x0600;   // below: an 802.3 length field

// PPP protocol numbers.
inline constexpr uint16_t kPppIpv4 = 0x0021;
inline constexpr uint16_t kPppIpv6 = 0x0057;
inline constexpr uint16_t kPppMplsUc = 0x0281;
inline constexpr uint16_t kPppMplsMc = 0x0283;

// IP protocol numbers.
inline constexpr uint8_t kIpHopByHop = 0;
inline constexpr uint8_t kIpIcmp = 1;
inline constexpr uint8_t kIpIpip = 4;
inline constexpr uint8_t kIpTcp = 6;
inline constexpr uint8_t kIpUdp = 17;
inline constexpr uint8_t kIpIpv6 = 41;
inline constexpr uint8_t kIpRouting = 43;
inline constexpr uint8_t kIpFragment = 44;
inline constexpr uint8_t kIpGre = 47;
inline constexpr uint8_t kIpEsp = 50;
inline constexpr uint8_t kIpAh = 51;
inline constexpr uint8_t kIpIcmpv6 = 58;
inline constexpr uint8_t kIpDstOpts = 60;
inline constexpr uint8_t kIpSctp = 132;

// UDP ports of the tunnels we decapsulate (tshark's default port table).
inline constexpr uint16_t kPortVxlan = 4789;
inline constexpr uint16_t kPortGtpU = 2152;
inline constexpr uint16_t kPortGeneve = 6081;
inline constexpr uint16_t kPortTeredo = 3544;

// Fixed header sizes.
inline constexpr uint32_t kEthHeader = 14;
inline constexpr uint32_t kVlanTag = 4;
inline constexpr uint32_t kMplsLabel = 4;
inline constexpr uint32_t kPppoeHeader = 6;
inline constexpr uint32_t kSllHeader = 16;
inline constexpr uint32_t kSll2Header = 20;
inline constexpr uint32_t kNflogHeader = 4;
inline constexpr uint32_t kIpv4MinHeader = 20;
inline constexpr uint32_t kIpv6Header = 40;
inline constexpr uint32_t kUdpHeader = 8;
inline constexpr uint32_t kTcpFlagsOffset = 13;  // the flags byte (CWR..FIN) in a TCP header
inline constexpr uint32_t kVxlanHeader = 8;
inline constexpr uint32_t kGeneveHeader = 8;
inline constexpr uint32_t kGtpHeader = 8;
inline constexpr uint32_t kErspan2Header = 8;
inline constexpr uint32_t kErspan3Header = 12;
inline constexpr uint32_t kErspan3Platform = 8;

// Linux cooked capture: ARPHRD type of netlink monitor interfaces (no IP inside).
inline constexpr uint16_t kArphrdNetlink = 824;

// NFLOG (Linux nfnetlink_log): TLV type of the packet payload.
inline constexpr uint16_t kNflogPayload = 9;
inline constexpr uint8_t kAfInet = 2;
inline constexpr uint8_t kAfInet6Linux = 10;

// BSD loopback address families meaning IPv6 (NetBSD/OpenBSD, FreeBSD, Darwin).
inline constexpr uint32_t kBsdAfInet = 2;
inline constexpr uint32_t kBsdAfInet6Bsd = 24;
inline constexpr uint32_t kBsdAfInet6FreeBsd = 28;
inline constexpr uint32_t kBsdAfInet6Darwin = 30;

inline uint16_t load_be16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline uint32_t load_be32(const uint8_t* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}
inline uint16_t load_le16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline uint32_t load_le32(const uint8_t* p) noexcept {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

}  // namespace flower::detail
