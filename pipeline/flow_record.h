#pragma once
// flow_record: one exported bidirectional flow record (RFC 5103 biflow).
//
// `key` is oriented initiator -> responder: addr_a/port_a is the side that
// sent the TCP SYN, else the client by service port, else the sender of the
// first packet. `fwd` counts what the initiator sent, `rev` what it received.
// docs/records.md maps every field onto its IPFIX information element.

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "pipeline/decode.h"
#include "pipeline/flow_key.h"

namespace flower {

// Values are IPFIX flowEndReason (RFC 5102 / IANA registry).
enum class end_reason : uint8_t {
  idle = 1,      // idleTimeout
  active = 2,    // activeTimeout: exported and continued
  tcp_end = 3,   // endOfFlowDetected: FIN both ways or RST, after the linger
  shutdown = 4,  // forcedEnd: the sensor stopped
  evicted = 5,   // lackOfResources: the table was full
};

constexpr std::string_view name_of(end_reason r) noexcept {
  switch (r) {
    case end_reason::idle: return "idle";
    case end_reason::active: return "active";
    case end_reason::tcp_end: return "tcp_end";
    case end_reason::shutdown: return "shutdown";
    case end_reason::evicted: return "evicted";
  }
  return "unknown";
}

constexpr std::string_view name_of(tunnel_kind t) noexcept {
  switch (t) {
    case tunnel_kind::none: return "none";
    case tunnel_kind::ip_in_ip: return "ip_in_ip";
    case tunnel_kind::gre: return "gre";
    case tunnel_kind::vxlan: return "vxlan";
    case tunnel_kind::geneve: return "geneve";
    case tunnel_kind::gtp_u: return "gtp_u";
    case tunnel_kind::teredo: return "teredo";
    case tunnel_kind::erspan: return "erspan";
  }
  return "unknown";
}

struct direction_counters {
  uint64_t packets = 0;
  uint64_t bytes = 0;        // IP octets (octetDeltaCount)
  uint64_t frame_bytes = 0;  // original frame lengths
  uint8_t tcp_flags = 0;     // OR of all TCP flags seen
  uint32_t spi = 0;          // first ESP/AH SPI seen in this direction
};

struct flow_record {
  flow_key key;  // initiator (a) -> responder (b)
  direction_counters fwd;
  direction_counters rev;
  uint64_t first_ns = 0;
  uint64_t last_ns = 0;
  uint16_t icmp_type_code = 0;  // first ICMP type/code seen from the initiator
  tunnel_kind tunnel = tunnel_kind::none;
  end_reason reason = end_reason::idle;
};

// Where expired records go. Called once per batch of records (never per
// packet); the span is valid only during the call.
class record_sink {
 public:
  virtual ~record_sink() = default;
  virtual void consume(std::span<const flow_record> records) = 0;
};

}  // namespace flower
