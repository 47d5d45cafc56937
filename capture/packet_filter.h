#pragma once
// packet_filter: tcpdump-style BPF filter expressions ("tcp port 443",
// "net 10.0.0.0/8 and not icmp") applied to captured frames, compiled by
// libpcap for each link type on first use.
//
//   packet_filter f = packet_filter::compile("udp and port 53");  // throws capture_error
//   if (f.matches(view)) ...
//
// An empty expression matches everything at no cost.
//
// Link types: the program for a link type is compiled on its first packet
// and kept (up to max_link_types distinct types per filter). A link type
// libpcap cannot compile the expression for (e.g. "vlan" on raw IP), or one
// beyond the table, never matches: such packets are filtered out and counted
// in counters().uncompilable, so a typo-free expression that makes no sense
// for a capture shows up as a counter, not as an error mid-run.
// matches() is noexcept and allocation-free after the first packet of each
// link type. Not thread-safe: one filter per worker.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "capture/capture_file.h"
#include "pipeline/packet.h"

namespace flower {

struct packet_filter_counters {
  uint64_t matched = 0;       // packets the expression accepted
  uint64_t rejected = 0;      // packets the expression refused
  uint64_t uncompilable = 0;  // packets whose link type has no program (never match)
};

class packet_filter {
 public:
  static constexpr size_t max_link_types = 8;

  // Validates the expression against Ethernet at once so a typo fails at
  // start-up, not at the first packet.
  static packet_filter compile(const std::string& expression, uint32_t snaplen = 262144);

  packet_filter();
  packet_filter(packet_filter&&) noexcept;
  packet_filter& operator=(packet_filter&&) noexcept;
  ~packet_filter();

  bool empty() const noexcept;
  bool matches(const packet_view& packet) noexcept;  // compiles lazily per link type
  // Keep the packets of `batch` that match, in order, at its front; returns
  // how many. An empty filter keeps all without looking at them.
  size_t keep_matching(std::span<packet_view> batch) noexcept;
  const std::string& expression() const noexcept;
  const packet_filter_counters& counters() const noexcept;  // all zero for an empty filter

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace flower
