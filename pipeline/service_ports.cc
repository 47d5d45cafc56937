// service_ports: the default table of server ports. docs/flow-table.md lists it.

#include "pipeline/service_ports.h"

#include <initializer_list>

namespace flower {

service_ports::service_ports() : bits_(std::make_shared<std::bitset<4 * 65536>>()) {}

void service_ports::add(uint8_t proto, uint16_t port) {
  // Copies share the bitmap; copy on write so adding to one table never
  // changes another.
  if (bits_.use_count() > 1) bits_ = std::make_shared<std::bitset<4 * 65536>>(*bits_);
  bits_->set(index(proto) * 65536u + port);
}

void service_ports::clear() { bits_ = std::make_shared<std::bitset<4 * 65536>>(); }

service_ports service_ports::defaults() {
  constexpr uint8_t kTcp = 6, kUdp = 17, kSctp = 132;
  // Server ports for both TCP and UDP. DHCP: only 67 (the server); 68 is
  // the client. Ports a client also binds (NTP 123, IKE 500, NetBIOS 137)
  // stay in: when both sides use them the first-sender rule decides.
  static constexpr std::initializer_list<uint16_t> kTcpUdp = {
      20,   21,   22,   23,   25,   53,   67,   69,   80,   88,   110,  111,  123,  135,
      137,  138,  139,  143,  161,  162,  179,  389,  443,  445,  464,  465,  500,  514,
      515,  587,  631,  636,  853,  873,  993,  995,  1194, 1433, 1521, 1812, 1813, 1883,
      2049, 2152, 3268, 3306, 3389, 3478, 4500, 5060, 5061, 5222, 5353, 5432, 5671, 5672,
      5900, 6379, 6443, 8080, 8443, 8883, 9092, 9200, 11211, 27017, 51820};
  // SCTP signalling: M2UA 2904, M3UA 2905, Diameter 3868, M2PA 3565, SUA 14001,
  // S1AP 36412, X2AP 36422, NGAP 38412, XnAP 38422, F1AP 38472, SIP 5060.
  static constexpr std::initializer_list<uint16_t> kSctpPorts = {
      2904, 2905, 3565, 3868, 5060, 5061, 14001, 29118, 29168, 36412, 36422, 38412, 38422, 38472};
  service_ports p;
  for (uint16_t port : kTcpUdp) {
    p.add(kTcp, port);
    p.add(kUdp, port);
  }
  for (uint16_t port : kSctpPorts) p.add(kSctp, port);
  return p;
}

}  // namespace flower
