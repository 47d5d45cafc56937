#pragma once
// ip_protocols: the --xdp-proto list, "tcp,udp" or "6,17", as IP protocol
// numbers for the XDP program's pre-filter.
//
//   std::vector<uint8_t> protocols;
//   std::string error;
//   if (!parse_ip_protocol_list("tcp,udp,132", protocols, error)) usage(error);

#include <cstdint>
#include <string>
#include <vector>

namespace flower {

// Comma-separated IP protocol names (icmp, igmp, ipip, tcp, udp, ipv6, gre,
// esp, ah, icmp6/ipv6-icmp, ospf, sctp, udplite) or numbers 0..255; "" is the
// empty list. Returns false and sets `error` for an empty item, an unknown
// name or a number out of range (protocols is then unspecified).
bool parse_ip_protocol_list(const std::string& list, std::vector<uint8_t>& protocols, std::string& error);

}  // namespace flower
