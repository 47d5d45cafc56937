#pragma once
// sensor_live: flower-sensor's live run loop (-d DEV). Opens the capture front
// end chosen by the options (AF_XDP with our XDP program, else libpcap live),
// meters with flow_engine until SIGINT/SIGTERM, exports everything left and
// reports where every packet went.
//
//   json_writer out(STDOUT_FILENO);
//   int rc = run_live(options, out, [&](const sensor_stats& s, const live_counters& l) {
//     std::fputs(stats_summary(s).c_str(), stderr);
//     std::fputs(live_counters_summary(l).c_str(), stderr);
//   });
//   out.flush();
//   return rc;
//
// Front-end rules (docs/live-capture.md):
// - --capture xdp (or default): attach bpf/flower_xdp to DEV, one AF_XDP
//   socket per queue. If that fails and --capture was not given explicitly,
//   print one line saying why and fall back to libpcap.
// - --xdp-mode auto tries native, then generic; --zero-copy auto tries
//   zero-copy, then copy. What was obtained is printed per queue at start.
// - Records are written as they expire (idle/active timeouts driven by a
//   wall-clock tick when traffic is idle) and all remaining ones at stop.
// - Several queues: with a symmetric RSS hash each queue runs to completion
//   on its own thread (parallel_engine::run_per_queue); otherwise they are
//   re-sharded in software (parallel_engine::run, or one thread), said in
//   one line. --rss-symmetric first tries to set the 6d:5a key.
// - -b: forks a daemon (pidfile, log to --log FILE or syslog, no terminal);
//   the parent exits once capture runs (0) or with the daemon's error.
//
// run_live installs its own SIGINT/SIGTERM handlers for the duration of the
// call (previous handlers are restored) and returns 0, or prints one line and
// returns 1 when setup fails (no such device, XDP program not ours, ...).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pipeline/flow_record.h"
#include "tools/sensor_options.h"
#include "tools/sensor_stats.h"

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

// Called once when capture has stopped (after the final flush into the sink).
using live_stats_callback = std::function<void(const sensor_stats&, const live_counters&)>;

int run_live(const sensor_options& options, record_sink& sink,
             const live_stats_callback& on_stop = {});

// --xdp-proto LIST: comma-separated IP protocol names (tcp, udp, icmp,
// icmp6, sctp, gre, esp, ah, ...) or numbers 0..255. Returns false and sets
// error for an unknown name or a number out of range.
bool parse_ip_protocol_list(const std::string& list, std::vector<uint8_t>& protocols, std::string& error);

// Renderings for the lead's stats output.
std::string live_counters_json(const live_counters& counters);     // one JSON object
std::string live_counters_summary(const live_counters& counters);  // lines for stderr

}  // namespace flower
