#pragma once
// packet_filter: tcpdump-style BPF filter expressions ("tcp port 443",
// "net 10.0.0.0/8 and not icmp") applied to captured frames, compiled by
// libpcap for each link type on first use.
//
//   packet_filter f = packet_filter::compile("udp and port 53");  // throws capture_error
//   if (f.matches(view)) ...
//
// An empty expression matches everything at no cost.

#include <memory>
#include <string>

#include "capture/capture_file.h"
#include "pipeline/packet.h"

namespace flower {

class packet_filter {
 public:
  // Validates the expression against Ethernet at once so a typo fails at
  // start-up, not at the first packet.
  static packet_filter compile(const std::string& expression, uint32_t snaplen = 262144);

  packet_filter();
  packet_filter(packet_filter&&) noexcept;
  packet_filter& operator=(packet_filter&&) noexcept;
  ~packet_filter();

  bool empty() const noexcept;
  bool matches(const packet_view& packet) noexcept;  // compiles lazily per link type

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace flower
