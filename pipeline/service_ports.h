#pragma once
// service_ports: which well-known ports identify the server side of a flow,
// so the other side is the initiator when no TCP SYN says otherwise.
//
//   service_ports ports = service_ports::defaults();
//   ports.add(17, 5353);
//   if (ports.is_service(17, 53)) ...
//
// A flat bitmap per protocol family (TCP, UDP, SCTP, other): 3 x 8 KiB,
// one bit test per lookup, no allocation after construction.

#include <bitset>
#include <cstdint>
#include <memory>

namespace flower {

class service_ports {
 public:
  service_ports();
  static service_ports defaults();  // DNS, NTP, IKE, DHCP, SNMP, syslog, QUIC/HTTPS, ...

  void add(uint8_t proto, uint16_t port);
  void clear();
  bool is_service(uint8_t proto, uint16_t port) const noexcept {
    return bits_->test(index(proto) * 65536u + port);
  }

 private:
  static unsigned index(uint8_t proto) noexcept { return proto == 6 ? 0 : proto == 17 ? 1 : proto == 132 ? 2 : 3; }
  std::shared_ptr<std::bitset<4 * 65536>> bits_;
};

}  // namespace flower
