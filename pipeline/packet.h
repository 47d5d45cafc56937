#pragma once
// packet_view: one captured frame as a source hands it to the pipeline.
//
// Sources (capture/) produce spans of packet_view; the pipeline only reads
// them. A view does not own its bytes: the source guarantees they stay valid
// until the batch has been processed (mmap of a file, a UMEM frame, a ring
// slot). `caplen` bytes are readable at `data`; `wire_len` is the original
// length on the wire (pcap's orig_len), which may be larger.
//
//   packet_view p{frame, 60, 60, ts_ns, link_type::ethernet};
//   record_buffer out(sink);
//   engine.process({&p, 1}, out);   // flow_engine: a batch is a span of views
//   out.flush();

#include <cstdint>
#include <span>

namespace flower {

// Link types we decode. Values are the LINKTYPE_ numbers written in pcap and
// pcapng files (https://www.tcpdump.org/linktypes.html). Live libpcap handles
// report DLT_ values, which are the same for these except raw IP (DLT_RAW is
// 12 or 14): the live source maps it.
enum class link_type : uint16_t {
  null = 0,          // BSD loopback, host-order 4-byte address family
  ethernet = 1,      // EN10MB
  ppp = 9,           // PPP, optional HDLC address/control bytes
  raw = 101,         // raw IPv4 or IPv6, version from the first nibble
  loop = 108,        // OpenBSD loopback, network-order address family
  linux_sll = 113,   // Linux cooked capture v1
  ipv4 = 228,        // raw IPv4
  ipv6 = 229,        // raw IPv6
  nflog = 239,       // Linux netfilter NFLOG (TLVs, payload TLV holds IP)
  linux_sll2 = 276,  // Linux cooked capture v2
};

struct packet_view {
  const uint8_t* data = nullptr;
  uint32_t caplen = 0;    // bytes readable at data
  uint32_t wire_len = 0;  // original frame length (>= caplen for sane input)
  uint64_t ts_ns = 0;     // capture time, nanoseconds since the Unix epoch
  link_type link = link_type::ethernet;
};

using packet_batch = std::span<const packet_view>;

}  // namespace flower
