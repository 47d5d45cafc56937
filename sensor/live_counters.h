#pragma once
// live_counters: what a live capture front end reports about itself at stop
// (AF_XDP sockets and program, or libpcap), beside the packet ledger.
// Filled by the live run loop (run_live.h); rendered by report.h as the
// "live" member of --stats-json and as lines for stderr.

#include <cstdint>
#include <string>
#include <vector>

#include "sensor/sensor_options.h"

namespace flower {

// One AF_XDP socket (one RX queue).
struct xdp_queue_counters {
  uint32_t queue_id = 0;
  bool zero_copy = false;           // XDP_OPTIONS_ZEROCOPY obtained
  bool busy_poll = false;           // SO_PREFER_BUSY_POLL + SO_BUSY_POLL accepted
  uint64_t rx_packets = 0;          // descriptors read from the RX ring
  // getsockopt(XDP_STATISTICS)
  uint64_t rx_dropped = 0;          // kernel dropped: no UMEM frame / filtered
  uint64_t rx_invalid_descs = 0;
  uint64_t rx_ring_full = 0;        // RX ring full
  uint64_t fill_ring_empty_descs = 0;
  // flower_xdp_hwts only: frames that carried its metadata, and of those the
  // ones timed by the driver's receive clock / ignored as > 1 s off
  uint64_t metadata_frames = 0;
  uint64_t hw_timestamps = 0;
  uint64_t hw_timestamps_unsynced = 0;
};

// The XDP program's per-CPU counters (bpf/flower_xdp_shared.h), summed.
struct xdp_program_counters {
  uint64_t seen = 0;
  uint64_t redirected = 0;   // into an AF_XDP socket
  uint64_t passed = 0;       // XDP_PASS: pre-filtered, sampled out, or no socket on the queue
  uint64_t dropped = 0;      // XDP_DROP (only with drop-unmatched)
  uint64_t prefiltered = 0;  // subset of passed/dropped: IP version / protocol filter
  uint64_t sampled_out = 0;  // subset of passed/dropped: 1-in-N sampling
  uint64_t no_socket = 0;    // subset of passed: redirect failed
};

struct pcap_live_counters {
  uint64_t ps_recv = 0;
  uint64_t ps_drop = 0;
  uint64_t ps_ifdrop = 0;
};

struct live_counters {
  std::string device;
  capture_mode front_end = capture_mode::auto_select;  // xdp or pcap once running
  std::string fallback_reason;                  // why XDP was not used, if it fell back
  // XDP front end
  xdp_attach_mode xdp_mode = xdp_attach_mode::auto_select;  // native or generic obtained
  bool replaced_stale_program = false;          // a leftover flower_xdp was replaced
  bool hw_timestamps = false;                   // flower_xdp_hwts: driver receive time when it has one
  std::vector<xdp_queue_counters> queues;
  xdp_program_counters program;
  std::vector<xdp_program_counters> program_per_cpu;
  // pcap front end
  pcap_live_counters pcap;
  // RSS (multi-queue devices only; veth reports rss_checked = false)
  bool rss_checked = false;
  bool rss_symmetric = false;
  std::string rss_note;
};

}  // namespace flower
