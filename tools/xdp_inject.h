#pragma once
// xdp_inject: flower-send's fast path. Transmits one pre-built 64-byte IPv4
// UDP frame out of an interface at several Mpps by running bpf/flower_blast
// with BPF_PROG_RUN in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES, kernel
// >= 5.18): the kernel feeds page-pool frames initialised from the template
// to the program, which rewrites the UDP source port (cycling over `flows`)
// and returns XDP_TX, i.e. ndo_xdp_xmit out of `ifname`. No socket, no skb.
//
//   xdp_inject_config cfg{.ifname = "veth1", .frame = frame, .flows = 8192,
//                         .seconds = 5, .pps = 1e6};
//   xdp_inject_result r = xdp_inject_run(cfg);   // throws std::system_error
//
// On veth the frames land in the peer's NAPI ring, which exists only while
// the peer has an XDP program attached or GRO enabled (`ethtool -K PEER gro
// on`); otherwise they are dropped and counted as the sender's tx_dropped.
// Pacing: with pps > 0, ONE call of pps x seconds frames, and the program
// holds each frame until it is due (each call costs a ~30 ms RCU grace
// period on teardown, so short paced calls cannot work); pps = 0 runs 1 Mi
// frames per call, as fast as the CPU goes, until `seconds` have passed.

#include <cstdint>
#include <string>
#include <vector>

namespace flower {

struct xdp_inject_config {
  std::string ifname;
  std::vector<uint8_t> frame;   // Ethernet + IPv4 + UDP template
  uint32_t flows = 8192;        // source ports first_port .. first_port+flows-1
  uint16_t first_port = 10000;
  double seconds = 5;
  double pps = 0;               // 0 = as fast as possible
  uint32_t batch_size = 64;     // frames per kernel batch (BPF_PROG_RUN batch_size)
};

struct xdp_inject_result {
  uint64_t frames = 0;          // program runs = frames handed to ndo_xdp_xmit
  uint64_t calls = 0;           // BPF_PROG_RUN syscalls
  double seconds = 0;
};

xdp_inject_result xdp_inject_run(const xdp_inject_config& config);

}  // namespace flower
