#pragma once
// decode_status: what became of a packet the decoder could not turn into a
// flow update, as a named reason. Every received packet ends in exactly one
// place: a flow, the filter, or one of these reasons (the conservation
// identity checked by tests and printed by --stats-json).
//
// Categories: `malformed` = the bytes contradict the protocol (cut short,
// impossible lengths); `unsupported` = well-formed but nothing we meter
// (ARP, LLDP, an unknown link type).

#include <array>
#include <cstdint>
#include <string_view>

namespace flower {

// X(name, category, description)
#define FLOWER_DECODE_STATUSES(X)                                                        \
  X(ok, none, "decoded into a flow key")                                                 \
  X(truncated_link, malformed, "frame shorter than its link-layer header")               \
  X(truncated_vlan, malformed, "802.1Q/802.1ad tag cut short")                           \
  X(vlan_depth, malformed, "more stacked VLAN tags than kMaxVlanTags")                   \
  X(truncated_mpls, malformed, "MPLS label stack cut short")                             \
  X(mpls_depth, malformed, "MPLS label stack deeper than kMaxMplsLabels")                \
  X(truncated_pppoe, malformed, "PPPoE session header cut short")                        \
  X(truncated_ip, malformed, "IP header cut before both addresses were captured")        \
  X(bad_ip_version, malformed, "IP version field is neither 4 nor 6")                    \
  X(bad_ipv4_header, malformed, "IPv4 header length below 20 bytes")                     \
  X(bad_ipv4_length, malformed, "IPv4 total length below its header length")              \
  X(ipv6_ext_depth, malformed, "IPv6 extension chain longer than kMaxIpv6ExtHeaders")    \
  X(bad_nflog, malformed, "NFLOG TLVs inconsistent or without a payload")                \
  X(unknown_link_type, unsupported, "link type we do not decode")                        \
  X(non_ip, unsupported, "frame carries no IP (ARP, LLDP, STP, PPPoE discovery, ...)")   \
  X(non_ip_ppp, unsupported, "PPP frame carries no IP (LCP, IPCP, ...)")                 \
  X(nflog_non_ip, unsupported, "NFLOG record of a non-IP family")

enum class decode_status : uint8_t {
#define FLOWER_X(name, category, text) name,
  FLOWER_DECODE_STATUSES(FLOWER_X)
#undef FLOWER_X
};

enum class status_category : uint8_t { none, malformed, unsupported };

inline constexpr size_t kDecodeStatusCount = 0
#define FLOWER_X(name, category, text) +1
    FLOWER_DECODE_STATUSES(FLOWER_X)
#undef FLOWER_X
    ;

inline constexpr std::array<std::string_view, kDecodeStatusCount> kDecodeStatusNames{
#define FLOWER_X(name, category, text) #name,
    FLOWER_DECODE_STATUSES(FLOWER_X)
#undef FLOWER_X
};

inline constexpr std::array<std::string_view, kDecodeStatusCount> kDecodeStatusText{
#define FLOWER_X(name, category, text) text,
    FLOWER_DECODE_STATUSES(FLOWER_X)
#undef FLOWER_X
};

inline constexpr std::array<status_category, kDecodeStatusCount> kDecodeStatusCategory{
#define FLOWER_X(name, category, text) status_category::category,
    FLOWER_DECODE_STATUSES(FLOWER_X)
#undef FLOWER_X
};

constexpr std::string_view name_of(decode_status s) noexcept { return kDecodeStatusNames[static_cast<size_t>(s)]; }
constexpr status_category category_of(decode_status s) noexcept {
  return kDecodeStatusCategory[static_cast<size_t>(s)];
}

}  // namespace flower
