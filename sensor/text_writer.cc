#include "sensor/text_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace flower {
namespace {

const char* proto_name(uint8_t proto) {
  switch (proto) {
    case 1: return "ICMP";
    case 2: return "IGMP";
    case 6: return "TCP";
    case 17: return "UDP";
    case 47: return "GRE";
    case 50: return "ESP";
    case 51: return "AH";
    case 58: return "ICMPv6";
    case 89: return "OSPF";
    case 132: return "SCTP";
    default: return nullptr;
  }
}

std::string endpoint(const std::array<uint8_t, 16>& addr, uint8_t version, uint16_t port, bool with_port) {
  std::string a = address_string(addr, version);
  if (!with_port) return a;
  return version == 6 ? "[" + a + "]:" + std::to_string(port) : a + ":" + std::to_string(port);
}

}  // namespace

std::string to_text(const flow_record& r) {
  const flow_key& k = r.key;
  const bool ports = k.proto == 6 || k.proto == 17 || k.proto == 132;
  const char* name = proto_name(k.proto);
  std::string proto = name ? name : "proto " + std::to_string(k.proto);
  char line[512];
  std::snprintf(line, sizeof line, "%-6s %s -> %s  vlan %u  pkts %llu/%llu  bytes %llu/%llu  %.3fs  %s%s%s\n",
                proto.c_str(), endpoint(k.addr_a, k.ip_version, k.port_a, ports).c_str(),
                endpoint(k.addr_b, k.ip_version, k.port_b, ports).c_str(), k.vlan,
                static_cast<unsigned long long>(r.fwd.packets), static_cast<unsigned long long>(r.rev.packets),
                static_cast<unsigned long long>(r.fwd.bytes), static_cast<unsigned long long>(r.rev.bytes),
                static_cast<double>(r.last_ns - r.first_ns) / 1e9, std::string(name_of(r.reason)).c_str(),
                r.tunnel == tunnel_kind::none ? "" : "  tunnel ", r.tunnel == tunnel_kind::none ? "" : std::string(name_of(r.tunnel)).c_str());
  return line;
}

void text_writer::consume(std::span<const flow_record> records) {
  for (const flow_record& r : records) {
    buffer_ += to_text(r);
    ++records_;
  }
  if (buffer_.size() > (1u << 16)) flush();
}

void text_writer::flush() noexcept {
  size_t off = 0;
  while (off < buffer_.size() && write_errors_ == 0) {
    ssize_t n = ::write(fd_, buffer_.data() + off, buffer_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      ++write_errors_;
      break;
    }
    off += static_cast<size_t>(n);
  }
  buffer_.clear();
}

}  // namespace flower
