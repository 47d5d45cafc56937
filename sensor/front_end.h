#pragma once
// front_end: the live capture policy as functions of their inputs, so it is
// testable without root or a NIC: which front end to try, how RX queues map
// to metering threads (RSS), how the options become an xdp_source_config,
// and which options a libpcap run ignores. The live run loop (run_live.h)
// gathers the inputs (if_nametoindex, ETHTOOL_GRSSH, the core count) and
// applies the answers. docs/live-capture.md describes the rules.
//
//   front_end_choice fe = choose_front_end(options, is_netdev, kHaveXdp);
//   queue_plan plan = plan_queues(queues, rss, options.assume_symmetric_rss,
//                                 options.threads, cores);
//   if (plan.per_queue) engine.run_per_queue(groups); else engine.run(one);

#include <cstddef>
#include <string>
#include <vector>

#include "sensor/sensor_options.h"
#ifdef FLOWER_HAVE_XDP
#include "capture/xdp_source.h"
#include "sensor/live_counters.h"
#endif

namespace flower {

#ifdef FLOWER_HAVE_XDP
inline constexpr bool kHaveXdp = true;
#else
inline constexpr bool kHaveXdp = false;
#endif

struct front_end_choice {
  bool try_xdp = false;         // attach XDP first
  bool xdp_required = false;    // --capture xdp: a failure is an error, never a fallback
  std::string fallback_reason;  // set when XDP is not tried although it was wanted
};

// --capture auto|xdp|pcap against what the device is: XDP attaches to
// network interfaces only; libpcap also opens pseudo-devices (any, nflog:N).
// An explicit --capture xdp is tried even on a non-interface (its error is
// the answer); a build without XDP never tries it.
front_end_choice choose_front_end(const sensor_options& options, bool is_netdev, bool built_with_xdp);

// What the device says about its RSS hash (ETHTOOL_GRSSH).
struct rss_state {
  bool checked = false;    // the device has > 1 queue and reported its key
  bool symmetric = false;  // both directions of a flow hash to one queue
  std::string note;        // e.g. "RSS Toeplitz key repeats every 16 bits: symmetric"
};

struct queue_plan {
  bool per_queue = false;  // each queue runs to completion on its own thread
  unsigned threads = 1;    // metering threads
  rss_state rss;           // as reported, or as assumed (note says so)
  std::string line;        // how the queues are metered, for stderr; empty with one queue
};

// Both directions of a flow must meet in one flow table: per-queue run to
// completion is right only when RSS is symmetric, else the queues are
// re-sharded in software by the engine's symmetric flow hash (or metered by
// one thread). `assume_symmetric` (--assume-symmetric-rss) counts a hash the
// driver cannot report as symmetric; a reported asymmetric one stays so.
// Threads: `requested` (--threads), else one per queue up to `cores` when per
// queue, else cores - 1 on more than two cores (one reads, the rest meter).
queue_plan plan_queues(const std::string& device, size_t queues, const rss_state& rss, bool assume_symmetric,
                       unsigned requested_threads, unsigned cores);

// Threads for a file: --threads, or all cores when there are enough of them
// for the dispatcher to have one of its own (on two cores one
// run-to-completion thread beats a dispatcher plus workers).
unsigned file_threads(unsigned requested, unsigned cores);

// Options that only XDP honours, each as one line to print when libpcap runs.
std::vector<std::string> pcap_ignored_options(const sensor_options& options);

#ifdef FLOWER_HAVE_XDP
// The XDP front end's configuration; throws std::invalid_argument for a bad
// --xdp-proto list.
xdp_source_config xdp_config(const sensor_options& options);

// What the XDP front end obtained, into `lc`, and its start-up lines on stderr.
void report_xdp_start(const xdp_source& src, live_counters& lc);
// The sockets' and the program's counters at stop, into `lc`.
void collect_xdp(const xdp_source& src, live_counters& lc);
#endif

}  // namespace flower
