// The live run loop behind flower-sensor -d DEV (see run_live.h): signals,
// the metering loop per front end, and the multi-core paths.
#include "sensor/run_live.h"

#include <net/if.h>
#include <signal.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "capture/interface_info.h"
#include "capture/interface_lock.h"
#include "capture/live_drain.h"
#include "capture/live_source.h"
#include "capture/packet_filter.h"
#include "capture/pcap_live_source.h"
#include "exporter/json_writer.h"
#include "pipeline/flow_engine.h"
#include "pipeline/parallel_engine.h"
#include "pipeline/record_buffer.h"
#include "sensor/daemon.h"
#include "sensor/front_end.h"
#include "sensor/text_writer.h"
#ifdef FLOWER_HAVE_XDP
#include "capture/xdp_source.h"
#endif

namespace flower {
namespace {

// Set by SIGINT/SIGTERM. The loops then drain the rings (capture/live_drain.h)
// before they stop; the multi-core engine is stopped by its sources once
// every one has drained (counted_source).
std::atomic<bool> g_live_stop{false};
void on_live_signal(int) { g_live_stop.store(true, std::memory_order_relaxed); }

// SIGINT/SIGTERM set the stop flag for the duration of run_live (no
// SA_RESTART: poll() returns at once); the previous handlers come back after.
class stop_signals {
 public:
  stop_signals() {
    g_live_stop.store(false);
    struct sigaction sa {};
    sa.sa_handler = on_live_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~stop_signals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  stop_signals(const stop_signals&) = delete;
  stop_signals& operator=(const stop_signals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// Records reach stdout when they expire, not only at exit: the writers buffer
// ~1 MiB, so flush them when the capture is idle (at most 10 times a second).
void flush_sink(record_sink& sink) noexcept {
  if (auto* j = dynamic_cast<json_writer*>(&sink)) j->flush();
  else if (auto* t = dynamic_cast<text_writer*>(&sink)) t->flush();
}

// The multi-core engine hands records over in batches (a full shard buffer,
// or an idle shard's sweep about once a second); each batch reaches the
// output at once, as on one core.
class flushing_sink final : public record_sink {
 public:
  explicit flushing_sink(record_sink& inner) : inner_(&inner) {}
  void consume(std::span<const flow_record> records) override {
    inner_->consume(records);
    flush_sink(*inner_);
  }

 private:
  record_sink* inner_;
};

constexpr int kIdleWaitMs = 100;
constexpr size_t kBatch = 256;

// How long a front end keeps received frames out of sight (libpcap's block
// timeout): the drain at stop waits that long for them.
template <typename Source>
std::chrono::milliseconds hidden_frames_ms(const Source& src) noexcept {
  if constexpr (requires { src.block_timeout_ms(); }) return std::chrono::milliseconds(src.block_timeout_ms());
  else return std::chrono::milliseconds(0);
}

// How often a one-thread run hands its ledger so far to on_progress.
constexpr auto kProgressInterval = std::chrono::seconds(1);

// The front end's own counters so far, for on_progress: cheap reads (one
// getsockopt per socket, or pcap_stats), made once a second.
template <typename Source>
void read_source_progress(const Source& src, drop_ledger& ledger, live_counters& lc) {
  if constexpr (requires { src.socket_stats(); }) {
    lc.queues.clear();
    ledger.source_dropped = 0;
    for (const auto& s : src.socket_stats()) {
      lc.queues.push_back({.queue_id = s.queue_id, .zero_copy = s.zero_copy, .rx_packets = s.rx_packets,
                           .rx_dropped = s.rx_dropped, .rx_invalid_descs = s.rx_invalid_descs,
                           .rx_ring_full = s.rx_ring_full, .fill_ring_empty_descs = s.fill_ring_empty_descs});
      ledger.source_dropped += s.rx_dropped + s.rx_ring_full;
    }
  } else if constexpr (requires { src.stats(); }) {
    const auto ps = src.stats();
    lc.pcap = {ps.ps_recv, ps.ps_drop, ps.ps_ifdrop};
    ledger.source_dropped = ps.ps_drop + ps.ps_ifdrop;
  }
}

// The metering loop, instantiated once per front end. Fills the ledger's
// engine stages and what the source delivered and the filter took. At stop
// it drains the source's rings (bounded, capture/live_drain.h) and counts
// what was left in them as source_undrained.
template <live_source Source>
void meter(Source& src, flow_engine& engine, packet_filter& filter, record_sink& sink, drop_ledger& ledger,
           const live_progress_callback& on_progress, live_counters progress_lc,
           const live_stopping_callback& on_stopping) {
  record_buffer out(sink);
  std::array<packet_view, kBatch> views;
  size_t exported = 0;
  uint64_t received = 0, filtered = 0;
  auto meter_batch = [&](size_t n) {
    received += n;
    const size_t kept = filter.keep_matching({views.data(), n});  // all, at no cost, without a filter
    filtered += n - kept;
    engine.process({views.data(), kept}, out);
    src.release_batch();
    out.flush();
  };
  auto next_progress = std::chrono::steady_clock::now() + kProgressInterval;
  drop_ledger progress;
  // Between batches and on idle ticks: one clock read per batch.
  auto report_progress = [&] {
    if (!on_progress) return;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_progress) return;
    next_progress = now + kProgressInterval;
    progress = drop_ledger::from_engine(engine.counters());
    progress.received = received;
    progress.filtered = filtered;
    read_source_progress(src, progress, progress_lc);
    on_progress(progress, progress_lc);
  };
  while (!g_live_stop.load(std::memory_order_relaxed)) {
    const size_t n = src.next_batch(views, kIdleWaitMs);
    if (n == 0) {
      engine.tick(realtime_ns(), out);
      out.flush();
      if (out.pushed() != exported) {
        exported = out.pushed();
        flush_sink(sink);
      }
      report_progress();
      continue;
    }
    meter_batch(n);
    report_progress();
  }
  if constexpr (requires { src.stop_intake(); }) src.stop_intake();
  drain_timer drain(hidden_frames_ms(src));
  for (bool got = true; !drain.done(got);) {
    const size_t n = src.next_batch(views, 0);
    got = n != 0;
    if (got) meter_batch(n);
  }
  const uint64_t undrained = src.undelivered();
  if (on_stopping) on_stopping();
  engine.finish(out);
  out.flush();
  ledger = drop_ledger::from_engine(engine.counters());
  ledger.received = received;
  ledger.filtered = filtered;
  ledger.source_undrained = undrained;
}

#ifdef FLOWER_HAVE_XDP
// The sources of one parallel run drain their queues at stop independently;
// the last one done stops the engine (before that, run() must keep calling
// them, so the engine is not stopped by the signal itself).
struct drain_barrier {
  parallel_engine* engine = nullptr;
  std::atomic<size_t> pending{0};
};

// A parallel_engine Source over one xdp_queue_group: applies the filter
// expression (one compiled filter per thread: packet_filter is not
// thread-safe) and counts what it saw, for the ledger. Read after run().
// At stop it drains its queues like meter() does. A cache line each, since
// each worker writes its own counters per batch.
template <typename Group>
class alignas(64) counted_source {
 public:
  counted_source(Group& group, const std::string& filter, uint32_t snaplen, drain_barrier& barrier)
      : group_(&group), filter_(packet_filter::compile(filter, snaplen)), barrier_(&barrier) {}
  size_t next_batch(std::span<packet_view> out) noexcept {
    if (drained_) return 0;
    if (!drain_ && g_live_stop.load(std::memory_order_relaxed)) {
      group_->stop_intake();
      drain_.emplace();
    }
    const size_t n = group_->next_batch(out);
    if (drain_ && drain_->done(n != 0)) {
      drained_ = true;
      undrained_ = group_->undelivered();  // after this read: its frames count as received
      if (barrier_->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) barrier_->engine->request_stop();
    }
    received_ += n;
    const size_t kept = filter_.keep_matching(out.first(n));
    filtered_ += n - kept;
    return kept;
  }
  uint64_t received() const noexcept { return received_; }
  uint64_t filtered() const noexcept { return filtered_; }
  uint64_t undrained() const noexcept { return undrained_; }

 private:
  Group* group_;
  packet_filter filter_;
  drain_barrier* barrier_;
  std::optional<drain_timer> drain_;
  bool drained_ = false;
  uint64_t received_ = 0;
  uint64_t filtered_ = 0;
  uint64_t undrained_ = 0;
};

// Frames the kernel could not hand to a socket (no free UMEM frame, RX ring
// full); the XDP program counted them as redirected.
uint64_t xdp_source_drops(const live_counters& lc) {
  uint64_t n = 0;
  for (const xdp_queue_counters& q : lc.queues) n += q.rx_dropped + q.rx_ring_full;
  return n;
}

// Several queues on several threads (parallel_engine, live mode).
void meter_parallel(xdp_source& src, const sensor_options& options, const queue_plan& plan, record_sink& sink,
                    sensor_report& report, const live_stopping_callback& on_stopping) {
  flushing_sink out(sink);
  parallel_config pc;
  pc.engine = options.engine;
  pc.threads = plan.threads;
  pc.live = true;
  parallel_engine engine(pc, out);
  // run_per_queue reads a group's views until its next call (hold 1);
  // run() decodes up to kMaxBatchesInFlight batches at once.
  std::vector<xdp_queue_group> groups = plan.per_queue
                                            ? src.split(plan.threads, 1)
                                            : src.split(1, static_cast<uint32_t>(kMaxBatchesInFlight + 1));
  drain_barrier barrier;
  barrier.engine = &engine;
  barrier.pending.store(groups.size());
  std::vector<counted_source<xdp_queue_group>> sources;
  sources.reserve(groups.size());
  for (xdp_queue_group& g : groups) sources.emplace_back(g, options.filter, options.snaplen, barrier);
  if (plan.per_queue) engine.run_per_queue(std::span(sources));
  else engine.run(sources[0]);
  for (xdp_queue_group& g : groups) g.release_batch();
  if (on_stopping) on_stopping();
  engine.finish();
  report.ledger = engine.ledger();
  report.ledger.received = 0;
  for (const auto& c : sources) {
    report.ledger.received += c.received();
    report.ledger.filtered += c.filtered();
    report.ledger.source_undrained += c.undrained();
  }
  report.threads = engine.shards();
  report.hash_seed = engine.hash_seed();
}

// --rss-symmetric: set the 6d:5a key when the hash is not symmetric, and
// read the hash again. Returns what the device reports afterwards.
rss_state rss_of(const sensor_options& options) {
  rss_report rss = check_rss_symmetry(options.device);
  if (options.rss_symmetric && rss.checked && !rss.symmetric) {
    const std::string why = set_rss_symmetric_key(options.device);
    if (why.empty()) {
      std::fprintf(stderr, "flower-sensor: %s: set the symmetric RSS key 6d:5a:6d:5a:...\n", options.device.c_str());
      rss = check_rss_symmetry(options.device);
    } else {
      std::fprintf(stderr, "flower-sensor: %s: cannot set a symmetric RSS key (%s)\n", options.device.c_str(),
                   why.c_str());
    }
  } else if (options.rss_symmetric && !rss.checked) {
    std::fprintf(stderr, "flower-sensor: %s: --rss-symmetric: %s\n", options.device.c_str(),
                 device_rx_queues(options.device) > 1 ? "the RSS key cannot be set either" : "nothing to set");
  }
  return {rss.checked, rss.symmetric, rss.note};
}

// The XDP front end. Returns false (with lc.fallback_reason) when XDP could
// not be opened and libpcap may take over; throws when it must not.
// host_line: what --capture xdp does to the host's traffic, said once XDP runs.
bool run_xdp(const sensor_options& options, bool xdp_required, const std::string& host_line, record_sink& sink,
             const live_stats_callback& on_stop, const live_progress_callback& on_progress,
             const live_stopping_callback& on_stopping, std::optional<flow_engine>& engine, packet_filter& filter, live_counters& lc) {
  const size_t planned = options.queues.empty() ? device_rx_queues(options.device) : options.queues.size();
  const queue_plan plan = plan_queues(options.device, planned, rss_of(options), options.assume_symmetric_rss,
                                      options.threads, std::thread::hardware_concurrency());
  lc.rss_checked = plan.rss.checked;
  lc.rss_symmetric = plan.rss.symmetric;
  lc.rss_note = plan.rss.note;
  // A one-thread run allocates its flow table (and touches its pages) before
  // capture starts, so the first packets do not wait for it.
  if (plan.threads == 1) engine.emplace(options.engine);
  std::optional<xdp_source> src;
  try {
    src.emplace(xdp_source::open(xdp_config(options)));
  } catch (const std::exception& e) {
    if (xdp_required) throw std::runtime_error(std::string("XDP capture on ") + options.device + ": " + e.what());
    lc.fallback_reason = e.what();
    std::fprintf(stderr, "flower-sensor: XDP unavailable on %s (%s); falling back to libpcap\n",
                 options.device.c_str(), e.what());
    return false;
  }
  if (options.xdp_ip_version != 0 || !options.xdp_protocols.empty() || options.sample_rate > 1)
    std::fprintf(stderr, "flower-sensor: XDP pre-filter: ip version %s, protocols %s, sample 1 in %u\n",
                 options.xdp_ip_version ? std::to_string(options.xdp_ip_version).c_str() : "any",
                 options.xdp_protocols.empty() ? "any" : options.xdp_protocols.c_str(),
                 options.sample_rate > 1 ? options.sample_rate : 1u);
  if (!plan.line.empty()) std::fprintf(stderr, "flower-sensor: %s\n", plan.line.c_str());
  if (!host_line.empty()) std::fprintf(stderr, "flower-sensor: %s\n", host_line.c_str());
  report_xdp_start(*src, lc);
  daemon_started();
  sensor_report report;
  if (plan.threads > 1) {
    meter_parallel(*src, options, plan, sink, report, on_stopping);
  } else {
    // One queue (or one thread): run to completion on this thread.
    meter(*src, *engine, filter, sink, report.ledger, on_progress, lc, on_stopping);
    report.threads = 1;
    report.hash_seed = engine->hash_seed();
  }
  collect_xdp(*src, lc);
  report.ledger.source_dropped = xdp_source_drops(lc);
  src.reset();  // detach before reporting
  if (on_stop) on_stop(report, lc);
  return true;
}
#endif

}  // namespace

int run_live(const sensor_options& options, record_sink& sink, const live_stats_callback& on_stop,
             const live_progress_callback& on_progress, const live_stopping_callback& on_stopping) {
  if (options.daemon) become_daemon(options);  // the parent does not return
  stop_signals signals;
  live_counters lc;
  lc.device = options.device;
  packet_filter filter = packet_filter::compile(options.filter, options.snaplen);
  std::optional<flow_engine> engine;

  // libpcap also opens pseudo-devices (any, nflog:N, ...) that XDP cannot:
  // for those (or a typo) libpcap has the last word, in one line.
  const bool netdev = if_nametoindex(options.device.c_str()) != 0;
  // One sensor per interface, before any front end touches it: a second one
  // would detach this one's XDP program or take its frames (throws
  // interface_busy naming the holder's pid).
  // A lock that cannot even be created (no write access to /run, e.g. an
  // unprivileged libpcap run) does not stop the capture: said in one line.
  interface_lock lock;
  if (netdev) {
    try {
      lock = interface_lock::acquire(options.device);
    } catch (const std::system_error& e) {  // interface_busy is not one: it propagates
      std::fprintf(stderr, "flower-sensor: %s: no interface lock (%s): a second sensor would not be refused\n",
                   options.device.c_str(), e.what());
    }
  }
  front_end_choice fe = choose_front_end(options, netdev, kHaveXdp);
  if (fe.xdp_required && !kHaveXdp)
    throw std::runtime_error("this flower-sensor was built without XDP support (FLOWER_BPF=OFF)");
  lc.fallback_reason = fe.fallback_reason;
#ifdef FLOWER_HAVE_XDP
  // A queue that does not exist is a usage error whatever the front end:
  // never a reason to fall back.
  validate_queues(options.device, options.queues);
#endif
  // XDP takes the frames it redirects away from the host: not by default on
  // an interface the host talks through (capture/interface_info.h). Each
  // line is said once the front end it concerns runs.
  std::string xdp_host_line, pcap_host_line;
  if (fe.try_xdp && netdev) {
    const interface_facts facts = read_interface_facts(options.device);
    const host_traffic_choice host = choose_front_end_for_host(
        fe.xdp_required ? capture_request::xdp : capture_request::auto_select, facts,
        {.prefilter = options.xdp_ip_version != 0 || !options.xdp_protocols.empty(),
         .sampling = options.sample_rate > 1});
    if (host.front_end == live_front_end::pcap) {
      fe.try_xdp = false;
      lc.fallback_reason = facts.describe();
      pcap_host_line = host.message;
    } else {
      xdp_host_line = host.message;
    }
  }
#ifdef FLOWER_HAVE_XDP
  if (fe.try_xdp && run_xdp(options, fe.xdp_required, xdp_host_line, sink, on_stop, on_progress, on_stopping, engine, filter, lc)) return 0;
#endif

  if (!engine) engine.emplace(options.engine);
  pcap_live_config pc;
  pc.device = options.device;
  pc.filter = options.filter;  // in the kernel: the user-space filter is not needed
  pc.snaplen = options.snaplen;
  pc.buffer_bytes = options.pcap_buffer_bytes;
  pcap_live_source src = pcap_live_source::open(pc);
  if (options.capture != capture_mode::pcap && !netdev)
    std::fprintf(stderr, "flower-sensor: %s is not a network interface: XDP cannot attach, using libpcap\n",
                 options.device.c_str());
  if (!src.warning().empty())
    std::fprintf(stderr, "flower-sensor: %s: %s\n", options.device.c_str(), src.warning().c_str());
  if (!pcap_host_line.empty()) std::fprintf(stderr, "flower-sensor: %s\n", pcap_host_line.c_str());
  for (const std::string& line : pcap_ignored_options(options)) std::fprintf(stderr, "flower-sensor: %s\n", line.c_str());
  lc.front_end = capture_mode::pcap;
  std::fprintf(stderr, "flower-sensor: capturing on %s with pcap (buffer %u KiB, snaplen %u)\n",
               options.device.c_str(), options.pcap_buffer_bytes >> 10, options.snaplen);
  daemon_started();
  packet_filter none;
  sensor_report report;
  meter(src, *engine, none, sink, report.ledger, on_progress, lc, on_stopping);
  report.threads = 1;
  report.hash_seed = engine->hash_seed();
  const pcap_live_stats ps = src.stats();
  lc.pcap = {ps.ps_recv, ps.ps_drop, ps.ps_ifdrop};
  report.ledger.source_dropped = ps.ps_drop + ps.ps_ifdrop;
  if (on_stop) on_stop(report, lc);
  return 0;
}

}  // namespace flower
