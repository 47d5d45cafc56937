// sensor_live: the live run loop behind flower-sensor -d DEV (see sensor_live.h).
#include "tools/sensor_live.h"

#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "capture/live_source.h"
#include "capture/packet_filter.h"
#include "capture/pcap_live_source.h"
#include "exporter/json_writer.h"
#include "pipeline/flow_engine.h"
#include "pipeline/parallel_engine.h"
#include "pipeline/record_buffer.h"
#include "tools/text_writer.h"
#ifdef FLOWER_HAVE_XDP
#include "capture/xdp_source.h"
#endif

namespace flower {
namespace {

std::atomic<bool> g_live_stop{false};
// The multi-core engine, while one runs: the handler asks it to stop too.
std::atomic<parallel_engine*> g_live_engine{nullptr};
void on_live_signal(int) {
  g_live_stop.store(true, std::memory_order_relaxed);
  if (parallel_engine* e = g_live_engine.load(std::memory_order_relaxed)) e->request_stop();  // an atomic store
}

// Publishes a parallel_engine to the signal handler for one run() call.
class engine_stop_scope {
 public:
  explicit engine_stop_scope(parallel_engine& e) {
    g_live_engine.store(&e);
    if (g_live_stop.load()) e.request_stop();  // a signal that came before the store
  }
  ~engine_stop_scope() { g_live_engine.store(nullptr); }
  engine_stop_scope(const engine_stop_scope&) = delete;
  engine_stop_scope& operator=(const engine_stop_scope&) = delete;
};

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

// A parallel_engine Source over one xdp_queue_group: applies the filter
// expression (one compiled filter per thread: packet_filter is not
// thread-safe) and counts what it saw, for the ledger. Read after run().
// A cache line each, since each worker writes its own counters per batch.
template <typename Group>
class alignas(64) counted_source {
 public:
  counted_source(Group& group, const std::string& filter, uint32_t snaplen)
      : group_(&group), filter_(packet_filter::compile(filter, snaplen)) {}
  size_t next_batch(std::span<packet_view> out) noexcept {
    const size_t n = group_->next_batch(out);
    received_ += n;
    const size_t kept = filter_.keep_matching(out.first(n));
    filtered_ += n - kept;
    return kept;
  }
  uint64_t received() const noexcept { return received_; }
  uint64_t filtered() const noexcept { return filtered_; }

 private:
  Group* group_;
  packet_filter filter_;
  uint64_t received_ = 0;
  uint64_t filtered_ = 0;
};

// ---- -b: run as a daemon ----------------------------------------------
//
// The parent forks and waits: the daemon's start-up lines (mode report,
// fallbacks, or the error that stopped it) reach the terminal through a
// pipe as well as the log, so `flower-sensor -b ...` exits 0 only once the
// capture runs, or with the daemon's exit code and its reason. The daemon
// calls setsid() (no controlling terminal), reads /dev/null, writes its
// stderr lines to --log FILE (timestamped) or syslog, keeps stdout only if
// it is not a terminal (the records go where stdout was redirected), writes
// the pidfile (flock'ed: a second daemon on it is refused) and removes it
// at exit, after --stats-json is written. The working directory is kept,
// so relative paths keep their meaning.

struct daemon_state {
  int log_fd = -1;     // --log FILE; -1: syslog
  int relay_fd = -1;   // start-up pipe to the waiting parent; -1 once started
  int pid_fd = -1;     // the pidfile, locked for the daemon's life
  std::string pidfile;
  std::string partial; // an unfinished stderr line
};
daemon_state* g_daemon = nullptr;  // never freed: stderr writes to it until exit

void write_all(int fd, const char* p, size_t n) noexcept {
  while (n != 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void log_line(daemon_state& d, const std::string& line) noexcept {
  if (d.log_fd < 0) {
    const char* text = line.c_str();
    if (line.rfind("flower-sensor: ", 0) == 0) text += 15;  // syslog names us already
    syslog(LOG_NOTICE, "%s", text);
    return;
  }
  char stamp[40];
  const time_t now = time(nullptr);
  tm t{};
  gmtime_r(&now, &t);
  const size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ ", &t);
  std::string out(stamp, n);
  out += line;
  out += '\n';
  write_all(d.log_fd, out.data(), out.size());
}

// stderr of the daemon (fopencookie): whole lines to the log, and every byte
// to the parent while it waits for start-up.
ssize_t daemon_stderr_write(void* cookie, const char* buf, size_t size) {
  auto& d = *static_cast<daemon_state*>(cookie);
  if (d.relay_fd >= 0) write_all(d.relay_fd, buf, size);
  d.partial.append(buf, size);
  for (size_t nl; (nl = d.partial.find('\n')) != std::string::npos;) {
    log_line(d, d.partial.substr(0, nl));
    d.partial.erase(0, nl + 1);
  }
  return static_cast<ssize_t>(size);
}

void remove_pidfile() noexcept {
  if (!g_daemon || g_daemon->pid_fd < 0) return;
  ::unlink(g_daemon->pidfile.c_str());  // while still holding the lock
  ::close(g_daemon->pid_fd);
  g_daemon->pid_fd = -1;
}

[[noreturn]] void wait_for_daemon(pid_t child, int relay) {
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(relay, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  const bool started = !text.empty() && text.back() == '\0';
  if (started) text.pop_back();
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
  if (started) _exit(0);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  _exit(WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1);
}

// Returns in the daemon only; the parent exits in wait_for_daemon().
void become_daemon(const sensor_options& o) {
  auto* d = new daemon_state;
  d->pidfile = o.pidfile.empty() ? "/run/flower-sensor-" + o.device + ".pid" : o.pidfile;
  // Everything that can fail for a reason the user should see on the
  // terminal is done before the fork; the log first, so a refusal leaves
  // no empty pidfile behind.
  if (!o.log_file.empty()) {
    d->log_fd = ::open(o.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (d->log_fd < 0) throw std::runtime_error("-b: cannot open log " + o.log_file + ": " + std::strerror(errno));
  }
  d->pid_fd = ::open(d->pidfile.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (d->pid_fd < 0) throw std::runtime_error("-b: cannot open pidfile " + d->pidfile + ": " + std::strerror(errno));
  if (::flock(d->pid_fd, LOCK_EX | LOCK_NB) != 0) {  // the lock is shared with the child across fork
    char pid[32] = {};
    [[maybe_unused]] ssize_t n = ::pread(d->pid_fd, pid, sizeof pid - 1, 0);
    pid[strcspn(pid, "\n")] = 0;
    throw std::runtime_error("-b: " + d->pidfile + " is locked: flower-sensor already running" +
                             (pid[0] ? std::string(" as pid ") + pid : std::string()));
  }
  int relay[2];
  if (::pipe2(relay, O_CLOEXEC) != 0) throw std::runtime_error(std::string("-b: pipe: ") + std::strerror(errno));
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t child = ::fork();
  if (child < 0) throw std::runtime_error(std::string("-b: fork: ") + std::strerror(errno));
  if (child > 0) {
    ::close(relay[1]);
    wait_for_daemon(child, relay[0]);
  }
  ::close(relay[0]);
  d->relay_fd = relay[1];
  ::setsid();
  signal(SIGHUP, SIG_IGN);
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  const bool stdout_tty = ::isatty(STDOUT_FILENO) == 1;
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    if (stdout_tty) ::dup2(null_fd, STDOUT_FILENO);
    // Raw writes to fd 2 (none of ours) go to the log file or nowhere.
    ::dup2(d->log_fd >= 0 ? d->log_fd : null_fd, STDERR_FILENO);
    ::close(null_fd);
  }
  if (d->log_fd < 0) openlog("flower-sensor", LOG_PID, LOG_DAEMON);
  cookie_io_functions_t io{};
  io.write = daemon_stderr_write;
  if (FILE* f = fopencookie(d, "w", io)) {
    setvbuf(f, nullptr, _IONBF, 0);
    stderr = f;
  }
  g_daemon = d;
  std::atexit(remove_pidfile);
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(d->pid_fd, 0) != 0 || ::pwrite(d->pid_fd, pid.data(), pid.size(), 0) < 0)
    throw std::runtime_error("-b: cannot write pidfile " + d->pidfile + ": " + std::strerror(errno));
  std::fprintf(stderr, "flower-sensor: running in the background as pid %d (pidfile %s, log %s)\n", ::getpid(),
               d->pidfile.c_str(), o.log_file.empty() ? "syslog" : o.log_file.c_str());
  if (stdout_tty)
    std::fprintf(stderr, "flower-sensor: stdout was a terminal: records are discarded (redirect stdout to a file)\n");
}

// Start-up is over (capture runs): release the waiting parent.
void daemon_started() noexcept {
  if (!g_daemon || g_daemon->relay_fd < 0) return;
  write_all(g_daemon->relay_fd, "", 1);  // the NUL that means "running"
  ::close(g_daemon->relay_fd);
  g_daemon->relay_fd = -1;
}

constexpr int kIdleWaitMs = 100;
constexpr size_t kBatch = 256;

// The metering loop, instantiated once per front end.
template <live_source Source>
void meter(Source& src, flow_engine& engine, packet_filter& filter, record_sink& sink,
           sensor_stats& stats) {
  record_buffer out(sink);
  std::array<packet_view, kBatch> views;
  size_t exported = 0;
  while (!g_live_stop.load(std::memory_order_relaxed)) {
    const size_t n = src.next_batch(views, kIdleWaitMs);
    if (n == 0) {
      engine.tick(realtime_ns(), out);
      out.flush();
      if (out.pushed() != exported) {
        exported = out.pushed();
        flush_sink(sink);
      }
      continue;
    }
    stats.received += n;
    const size_t kept = filter.keep_matching({views.data(), n});  // all, at no cost, without a filter
    stats.filtered += n - kept;
    engine.process({views.data(), kept}, out);
    src.release_batch();
    out.flush();
  }
  engine.finish(out);
  out.flush();
  stats.engine = engine.counters();
}

#ifdef FLOWER_HAVE_XDP
xdp_source_config xdp_config(const sensor_options& o) {
  xdp_source_config c;
  c.device = o.device;
  c.mode = o.xdp_mode == xdp_attach_mode::native    ? xdp_mode_request::native
           : o.xdp_mode == xdp_attach_mode::generic ? xdp_mode_request::generic
                                                    : xdp_mode_request::auto_select;
  c.zero_copy = o.zero_copy == zero_copy_mode::on    ? zero_copy_request::on
                : o.zero_copy == zero_copy_mode::off ? zero_copy_request::off
                                                     : zero_copy_request::auto_select;
  c.queues = o.queues;
  c.frames = o.xdp_frames;
  c.frame_size = o.xdp_frame_size;
  c.busy_poll = o.busy_poll;
  c.hw_timestamps = !o.clock_timestamps;
  c.prefilter.sample_rate = o.sample_rate;
  if (o.xdp_ip_version == 4) c.prefilter.ip_versions = FLOWER_XDP_IPV4;
  if (o.xdp_ip_version == 6) c.prefilter.ip_versions = FLOWER_XDP_IPV6;
  std::vector<uint8_t> protocols;
  std::string error;
  if (!parse_ip_protocol_list(o.xdp_protocols, protocols, error)) throw std::invalid_argument("--xdp-proto: " + error);
  for (uint8_t p : protocols) flower_xdp_config_add_protocol(&c.prefilter, p);
  return c;
}

void report_xdp_start(const xdp_source& src, live_counters& lc) {
  const xdp_source_info& info = src.info();
  lc.front_end = capture_mode::xdp;
  lc.xdp_mode = info.native ? xdp_attach_mode::native : xdp_attach_mode::generic;
  lc.replaced_stale_program = info.replaced_stale;
  lc.hw_timestamps = info.hw_timestamps;
  size_t start = 0;
  while (start < info.notes.size()) {  // one line per fallback taken
    size_t end = info.notes.find('\n', start);
    if (end == std::string::npos) end = info.notes.size();
    std::fprintf(stderr, "flower-sensor: %s\n", info.notes.substr(start, end - start).c_str());
    start = end + 1;
  }
  std::string queues;
  for (const xdp_queue_info& q : info.queues)
    queues += " queue " + std::to_string(q.queue_id) + ":" + (q.zero_copy ? "zero-copy" : "copy") +
              (q.busy_poll ? "+busy-poll" : "");
  std::fprintf(stderr, "flower-sensor: capturing on %s with xdp (%s%s),%s; times: %s\n", lc.device.c_str(),
               info.native ? "native" : "generic", info.dispatcher ? ", dispatcher" : "", queues.c_str(),
               info.hw_timestamps ? "driver receive time (XDP metadata) when given, else batch clock"
                                  : "one clock read per batch");
}

void collect_xdp(const xdp_source& src, live_counters& lc) {
  const std::vector<xdp_queue_info>& info = src.info().queues;
  for (const xdp_socket_stats& s : src.socket_stats()) {
    bool busy = false;
    for (const xdp_queue_info& q : info) busy = busy || (q.queue_id == s.queue_id && q.busy_poll);
    lc.queues.push_back({s.queue_id, s.zero_copy, busy, s.rx_packets, s.rx_dropped, s.rx_invalid_descs,
                         s.rx_ring_full, s.fill_ring_empty_descs, s.metadata_frames, s.hw_timestamps,
                         s.hw_timestamps_unsynced});
  }
  for (const flower_xdp_counters& c : src.program_counters()) {
    xdp_program_counters p{c.seen, c.redirected, c.passed, c.dropped, c.prefiltered, c.sampled_out, c.no_socket};
    lc.program_per_cpu.push_back(p);
    lc.program.seen += p.seen;
    lc.program.redirected += p.redirected;
    lc.program.passed += p.passed;
    lc.program.dropped += p.dropped;
    lc.program.prefiltered += p.prefiltered;
    lc.program.sampled_out += p.sampled_out;
    lc.program.no_socket += p.no_socket;
  }
}
#endif

const char* mode_name(capture_mode m) {
  return m == capture_mode::xdp ? "xdp" : m == capture_mode::pcap ? "pcap" : "none";
}
const char* mode_name(xdp_attach_mode m) {
  return m == xdp_attach_mode::native ? "native" : m == xdp_attach_mode::generic ? "generic" : "none";
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') { out += '\\'; out += ch; }
    else if (static_cast<unsigned char>(ch) < 0x20) out += ' ';
    else out += ch;
  }
  return out;
}

}  // namespace

#ifdef FLOWER_HAVE_XDP
namespace {

void source_drops(const live_counters& lc, sensor_stats& stats) {
  // Frames the kernel could not hand to a socket (no free UMEM frame, RX ring
  // full); the XDP program counted them as redirected.
  for (const xdp_queue_counters& q : lc.queues) stats.source_dropped += q.rx_dropped + q.rx_ring_full;
}

// Metering threads for several queues: --threads, else one per queue up to
// the core count (RSS symmetric: run to completion per queue), or, when the
// queues must be re-sharded in software, as for files (one dispatcher plus
// shards only pays with more than two cores).
unsigned live_threads(unsigned requested, size_t queues, bool per_queue) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (per_queue) return static_cast<unsigned>(std::min<size_t>(requested ? requested : cores, queues));
  if (requested != 0) return requested;
  return cores <= 2 ? 1 : cores - 1;
}

// Several queues on several threads (parallel_engine, live mode).
void meter_parallel(xdp_source& src, const sensor_options& options, unsigned threads, bool per_queue,
                    record_sink& sink, sensor_stats& stats) {
  flushing_sink out(sink);
  parallel_config pc;
  pc.engine = options.engine;
  pc.threads = threads;
  pc.live = true;
  parallel_engine engine(pc, out);
  // run_per_queue reads a group's views until its next call (hold 1);
  // run() decodes up to kMaxBatchesInFlight batches at once.
  std::vector<xdp_queue_group> groups =
      per_queue ? src.split(threads, 1) : src.split(1, static_cast<uint32_t>(kMaxBatchesInFlight + 1));
  std::vector<counted_source<xdp_queue_group>> sources;
  sources.reserve(groups.size());
  for (xdp_queue_group& g : groups) sources.emplace_back(g, options.filter, options.snaplen);
  {
    engine_stop_scope scope(engine);
    if (per_queue) engine.run_per_queue(std::span(sources));
    else engine.run(sources[0]);
  }
  for (xdp_queue_group& g : groups) g.release_batch();
  engine.finish();
  for (const auto& c : sources) {
    stats.received += c.received();
    stats.filtered += c.filtered();
  }
  stats.engine = engine.counters();
  stats.ring_dropped = engine.ledger().ring_full;
  stats.threads = engine.shards();
}

}  // namespace
#endif

int run_live(const sensor_options& options, record_sink& sink, const live_stats_callback& on_stop) {
  if (options.daemon) become_daemon(options);  // the parent does not return
  stop_signals signals;
  sensor_stats stats;
  live_counters lc;
  lc.device = options.device;
  packet_filter filter = packet_filter::compile(options.filter, options.snaplen);
  // A one-thread run allocates its flow table (and touches its pages) before
  // capture starts, so the first packets do not wait for it.
  std::optional<flow_engine> engine;

  const bool want_xdp = options.capture != capture_mode::pcap;
  const bool xdp_required = options.capture == capture_mode::xdp && options.capture_explicit;
  // libpcap also opens pseudo-devices (any, nflog:N, ...) that XDP cannot:
  // for those (or a typo) libpcap has the last word, in one line.
  const bool netdev = if_nametoindex(options.device.c_str()) != 0;
#ifdef FLOWER_HAVE_XDP
  // A queue that does not exist is a usage error whatever the front end:
  // never a reason to fall back.
  validate_queues(options.device, options.queues);
  if (want_xdp && !netdev && !xdp_required) lc.fallback_reason = "not a network interface";
  if (want_xdp && (netdev || xdp_required)) {
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
    // Tests only: veth has queues but no RSS; this exercises the per-queue
    // path there (docs/live-capture.md). Never set it on a real NIC.
    if (!rss.checked && device_rx_queues(options.device) > 1 && std::getenv("FLOWER_TEST_ASSUME_SYMMETRIC_RSS")) {
      rss.checked = rss.symmetric = true;
      rss.note = "RSS assumed symmetric (FLOWER_TEST_ASSUME_SYMMETRIC_RSS)";
    }
    lc.rss_checked = rss.checked;
    lc.rss_symmetric = rss.symmetric;
    lc.rss_note = rss.note;
    const size_t planned_queues = options.queues.empty() ? device_rx_queues(options.device) : options.queues.size();
    const bool per_queue = planned_queues > 1 && rss.checked && rss.symmetric;
    const unsigned threads = planned_queues > 1 ? live_threads(options.threads, planned_queues, per_queue) : 1;
    if (threads == 1) engine.emplace(options.engine);
    std::optional<xdp_source> src;
    try {
      src.emplace(xdp_source::open(xdp_config(options)));
    } catch (const std::exception& e) {
      if (xdp_required) throw std::runtime_error(std::string("XDP capture on ") + options.device + ": " + e.what());
      lc.fallback_reason = e.what();
      std::fprintf(stderr, "flower-sensor: XDP unavailable on %s (%s); falling back to libpcap\n",
                   options.device.c_str(), e.what());
    }
    if (src) {
      if (options.xdp_ip_version != 0 || !options.xdp_protocols.empty() || options.sample_rate > 1)
        std::fprintf(stderr, "flower-sensor: XDP pre-filter: ip version %s, protocols %s, sample 1 in %u\n",
                     options.xdp_ip_version ? std::to_string(options.xdp_ip_version).c_str() : "any",
                     options.xdp_protocols.empty() ? "any" : options.xdp_protocols.c_str(),
                     options.sample_rate > 1 ? options.sample_rate : 1u);
      // How queues map to metering threads. Both directions of a flow must
      // meet in one flow table: per-queue run to completion is only right
      // when RSS is symmetric, else all queues are re-sharded in software
      // by the engine's symmetric flow hash (or metered by one thread).
      const size_t nq = src->queue_count();
      if (nq > 1) {
        if (per_queue)
          std::fprintf(stderr, "flower-sensor: %s: %s; %zu queues run to completion on %u thread%s\n",
                       options.device.c_str(), rss.note.c_str(), nq, threads, threads == 1 ? "" : "s");
        else if (threads > 1)
          std::fprintf(stderr, "flower-sensor: %s: %s; re-sharding in software: one thread reads the %zu queues, "
                               "flows are hashed onto %u shards\n", options.device.c_str(), rss.note.c_str(), nq, threads);
        else
          std::fprintf(stderr, "flower-sensor: %s: %s; re-sharding in software: one thread meters all %zu queues, "
                               "so both directions of a flow still meet\n", options.device.c_str(), rss.note.c_str(), nq);
      }
      report_xdp_start(*src, lc);
      daemon_started();
      if (threads > 1) {
        meter_parallel(*src, options, threads, per_queue, sink, stats);
      } else {
        // One queue (or one thread): run to completion on this thread.
        meter(*src, *engine, filter, sink, stats);
        stats.threads = 1;
      }
      collect_xdp(*src, lc);
      source_drops(lc, stats);
      src.reset();  // detach before reporting
      if (on_stop) on_stop(stats, lc);
      return 0;
    }
  }
#else
  if (xdp_required) throw std::runtime_error("this flower-sensor was built without XDP support (FLOWER_BPF=OFF)");
  if (want_xdp) lc.fallback_reason = "built without XDP support";
#endif

  if (!engine) engine.emplace(options.engine);
  pcap_live_config pc;
  pc.device = options.device;
  pc.filter = options.filter;  // in the kernel: the user-space filter is not needed
  pc.snaplen = options.snaplen;
  pc.buffer_bytes = options.pcap_buffer_bytes;
  pcap_live_source src = pcap_live_source::open(pc);
  if (want_xdp && !netdev)
    std::fprintf(stderr, "flower-sensor: %s is not a network interface: XDP cannot attach, using libpcap\n",
                 options.device.c_str());
  if (!src.warning().empty())
    std::fprintf(stderr, "flower-sensor: %s: %s\n", options.device.c_str(), src.warning().c_str());
  if (options.sample_rate > 1)
    std::fprintf(stderr, "flower-sensor: --sample applies to XDP only; libpcap meters every packet\n");
  if (options.xdp_ip_version != 0 || !options.xdp_protocols.empty())
    std::fprintf(stderr, "flower-sensor: --xdp-ip-version/--xdp-proto apply to XDP only; "
                         "with libpcap use a filter expression (e.g. 'ip and udp')\n");
  if (!options.queues.empty())
    std::fprintf(stderr, "flower-sensor: --queues applies to XDP only; libpcap captures every queue\n");
  lc.front_end = capture_mode::pcap;
  std::fprintf(stderr, "flower-sensor: capturing on %s with pcap (buffer %u KiB, snaplen %u)\n",
               options.device.c_str(), options.pcap_buffer_bytes >> 10, options.snaplen);
  daemon_started();
  packet_filter none;
  meter(src, *engine, none, sink, stats);
  stats.threads = 1;
  const pcap_live_stats ps = src.stats();
  lc.pcap = {ps.ps_recv, ps.ps_drop, ps.ps_ifdrop};
  stats.source_dropped = ps.ps_drop + ps.ps_ifdrop;
  if (on_stop) on_stop(stats, lc);
  return 0;
}

bool parse_ip_protocol_list(const std::string& list, std::vector<uint8_t>& protocols, std::string& error) {
  static constexpr std::pair<const char*, uint8_t> kNames[] = {
      {"icmp", 1}, {"igmp", 2}, {"ipip", 4}, {"tcp", 6}, {"udp", 17}, {"ipv6", 41}, {"gre", 47},
      {"esp", 50}, {"ah", 51}, {"icmp6", 58}, {"ipv6-icmp", 58}, {"ospf", 89}, {"sctp", 132}, {"udplite", 136}};
  protocols.clear();
  size_t start = 0;
  while (start <= list.size() && !list.empty()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    const std::string word = list.substr(start, end - start);
    start = end + 1;
    if (word.empty()) { error = "empty protocol in '" + list + "'"; return false; }
    int value = -1;
    for (const auto& [name, number] : kNames)
      if (word == name) value = number;
    if (value < 0 && word.find_first_not_of("0123456789") == std::string::npos && word.size() <= 3)
      value = std::stoi(word);
    if (value < 0 || value > 255) { error = "unknown IP protocol '" + word + "' (name or 0..255)"; return false; }
    protocols.push_back(static_cast<uint8_t>(value));
  }
  return true;
}

std::string live_counters_json(const live_counters& c) {
  std::string j = "{\"device\":\"" + json_escape(c.device) + "\",\"front_end\":\"" + mode_name(c.front_end) + "\"";
  j += ",\"fallback_reason\":\"" + json_escape(c.fallback_reason) + "\"";
  if (c.front_end == capture_mode::xdp) {
    j += std::string(",\"xdp_mode\":\"") + mode_name(c.xdp_mode) + "\"";
    j += std::string(",\"replaced_stale_program\":") + (c.replaced_stale_program ? "true" : "false");
    j += std::string(",\"timestamps\":\"") + (c.hw_timestamps ? "xdp-metadata" : "batch-clock") + "\"";
    j += ",\"queues\":[";
    for (size_t i = 0; i < c.queues.size(); ++i) {
      const auto& q = c.queues[i];
      j += (i ? "," : "") + std::string("{\"queue\":") + std::to_string(q.queue_id) +
           ",\"xdp_mode\":\"" + mode_name(c.xdp_mode) + "\",\"bind\":\"" + (q.zero_copy ? "zero-copy" : "copy") +
           "\",\"busy_poll\":" + (q.busy_poll ? "true" : "false") +
           ",\"zero_copy\":" + (q.zero_copy ? "true" : "false") + ",\"rx_packets\":" + std::to_string(q.rx_packets) +
           ",\"rx_dropped\":" + std::to_string(q.rx_dropped) + ",\"rx_invalid_descs\":" + std::to_string(q.rx_invalid_descs) +
           ",\"rx_ring_full\":" + std::to_string(q.rx_ring_full) +
           ",\"fill_ring_empty_descs\":" + std::to_string(q.fill_ring_empty_descs) +
           ",\"metadata_frames\":" + std::to_string(q.metadata_frames) +
           ",\"hw_timestamps\":" + std::to_string(q.hw_timestamps) +
           ",\"hw_timestamps_unsynced\":" + std::to_string(q.hw_timestamps_unsynced) + "}";
    }
    const auto& p = c.program;
    j += "],\"program\":{\"seen\":" + std::to_string(p.seen) + ",\"redirected\":" + std::to_string(p.redirected) +
         ",\"passed\":" + std::to_string(p.passed) + ",\"dropped\":" + std::to_string(p.dropped) +
         ",\"prefiltered\":" + std::to_string(p.prefiltered) + ",\"sampled_out\":" + std::to_string(p.sampled_out) +
         ",\"no_socket\":" + std::to_string(p.no_socket) + "}";
  } else {
    j += ",\"pcap\":{\"ps_recv\":" + std::to_string(c.pcap.ps_recv) + ",\"ps_drop\":" + std::to_string(c.pcap.ps_drop) +
         ",\"ps_ifdrop\":" + std::to_string(c.pcap.ps_ifdrop) + "}";
  }
  j += std::string(",\"rss\":{\"checked\":") + (c.rss_checked ? "true" : "false") +
       ",\"symmetric\":" + (c.rss_symmetric ? "true" : "false") + ",\"note\":\"" + json_escape(c.rss_note) + "\"}}";
  return j;
}

std::string live_counters_summary(const live_counters& c) {
  std::string s = "live " + c.device + ": " + mode_name(c.front_end);
  if (!c.fallback_reason.empty()) s += " (fell back: " + c.fallback_reason + ")";
  s += "\n";
  if (c.front_end == capture_mode::xdp) {
    const auto& p = c.program;
    s += "  xdp " + std::string(mode_name(c.xdp_mode)) + ": seen " + std::to_string(p.seen) + ", redirected " +
         std::to_string(p.redirected) + ", passed " + std::to_string(p.passed) + " (no socket " +
         std::to_string(p.no_socket) + ", prefiltered " + std::to_string(p.prefiltered) + ", sampled out " +
         std::to_string(p.sampled_out) + "), dropped " + std::to_string(p.dropped) + "\n";
    for (const auto& q : c.queues)
      s += "  queue " + std::to_string(q.queue_id) + " " + mode_name(c.xdp_mode) + (q.zero_copy ? " zero-copy" : " copy") +
           (q.busy_poll ? "+busy-poll" : "") + ": rx " +
           std::to_string(q.rx_packets) + ", rx_dropped " + std::to_string(q.rx_dropped) + ", rx_ring_full " +
           std::to_string(q.rx_ring_full) + ", fill_ring_empty " + std::to_string(q.fill_ring_empty_descs) +
           (c.hw_timestamps ? ", hw timestamps " + std::to_string(q.hw_timestamps) + " of " +
                                  std::to_string(q.metadata_frames) + " stamped frames (" +
                                  std::to_string(q.hw_timestamps_unsynced) + " off the system clock)"
                            : std::string()) +
           "\n";
  } else if (c.front_end == capture_mode::pcap) {
    s += "  pcap: ps_recv " + std::to_string(c.pcap.ps_recv) + ", ps_drop " + std::to_string(c.pcap.ps_drop) +
         ", ps_ifdrop " + std::to_string(c.pcap.ps_ifdrop) + "\n";
  }
  return s;
}

}  // namespace flower
