#pragma once
// run_live: flower-sensor's live run loop (-d DEV). Opens the capture front
// end chosen by the options (AF_XDP with our XDP program, else libpcap live),
// meters until SIGINT/SIGTERM, exports everything left and reports where
// every packet went.
//
//   json_writer out(STDOUT_FILENO);
//   int rc = run_live(options, out, [&](const sensor_report& r, const live_counters& l) {
//     std::fputs((to_text(r) + to_text(l)).c_str(), stderr);
//   });
//   out.flush();
//   return rc;
//
// Front-end rules (docs/live-capture.md; the policy is front_end.h):
// - One sensor per interface: /run/flower/DEV.lock is taken before any
//   front end touches DEV; a second sensor is refused naming the holder.
// - Without --capture, an interface with addresses or routes is captured
//   with libpcap (XDP would take its frames away from the host), said in one
//   line (capture/interface_info.h); --capture xdp there is said once too.
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
// - At SIGINT/SIGTERM the rings are drained (bounded, capture/live_drain.h)
//   and what is left counts as the ledger's source_undrained.
// - -b: forks a daemon first (daemon.h).
//
// run_live installs its own SIGINT/SIGTERM handlers for the duration of the
// call (previous handlers are restored) and returns 0; setup failures (no
// such device, XDP program not ours, ...) throw, with one line's worth of
// reason, for main to print.

#include <functional>

#include "pipeline/drop_ledger.h"
#include "pipeline/flow_record.h"
#include "sensor/live_counters.h"
#include "sensor/report.h"
#include "sensor/sensor_options.h"

namespace flower {

// Called once when capture has stopped (after the final flush into the sink).
using live_stats_callback = std::function<void(const sensor_report&, const live_counters&)>;

// Called about once a second while capture runs (wall clock, checked between
// batches and on idle ticks, never per packet), on the thread that feeds the
// sink: the ledger so far (engine stages, received, filtered, the front
// end's drops) and the front end's counters so far (per-queue socket
// counters with XDP, pcap_stats with libpcap; the XDP program's counters
// only at stop). One-thread runs only: a multi-core run keeps its counters
// in the shards until they stop (docs/feed.md), so it reports at stop only.
using live_progress_callback = std::function<void(const drop_ledger&, const live_counters&)>;

// Called once at stop, after the rings are drained and before the flows
// still open are exported: an output that drops when it cannot keep up
// (the feed) can switch to waiting for that one burst.
using live_stopping_callback = std::function<void()>;

int run_live(const sensor_options& options, record_sink& sink, const live_stats_callback& on_stop = {},
             const live_progress_callback& on_progress = {}, const live_stopping_callback& on_stopping = {});

}  // namespace flower
