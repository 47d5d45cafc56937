// sensor_live: the live run loop behind flower-sensor -d DEV (see sensor_live.h).
#include "tools/sensor_live.h"

#include <signal.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "capture/live_source.h"
#include "capture/packet_filter.h"
#include "capture/pcap_live_source.h"
#include "exporter/json_writer.h"
#include "pipeline/flow_engine.h"
#include "pipeline/record_buffer.h"
#include "tools/text_writer.h"
#ifdef FLOWER_HAVE_XDP
#include "capture/xdp_source.h"
#endif

namespace flower {
namespace {

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

constexpr int kIdleWaitMs = 100;
constexpr size_t kBatch = 256;

// The metering loop, instantiated once per front end and filter presence.
template <live_source Source, bool Filtered>
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
    size_t kept = n;
    if constexpr (Filtered) {
      kept = 0;
      for (size_t i = 0; i < n; ++i)
        if (filter.matches(views[i])) views[kept++] = views[i];
      stats.filtered += n - kept;
    }
    engine.process({views.data(), kept}, out);
    src.release_batch();
    out.flush();
  }
  engine.finish(out);
  out.flush();
  stats.engine = engine.counters();
}

template <live_source Source>
void meter_dispatch(Source& src, flow_engine& engine, packet_filter& filter, record_sink& sink,
                    sensor_stats& stats) {
  if (filter.empty()) meter<Source, false>(src, engine, filter, sink, stats);
  else meter<Source, true>(src, engine, filter, sink, stats);
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
  std::fprintf(stderr, "flower-sensor: capturing on %s with xdp (%s%s),%s\n", lc.device.c_str(),
               info.native ? "native" : "generic", info.dispatcher ? ", dispatcher" : "", queues.c_str());
}

void collect_xdp(const xdp_source& src, live_counters& lc) {
  for (const xdp_socket_stats& s : src.socket_stats())
    lc.queues.push_back({s.queue_id, s.zero_copy, s.rx_packets, s.rx_dropped, s.rx_invalid_descs,
                         s.rx_ring_full, s.fill_ring_empty_descs});
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

int run_live(const sensor_options& options, record_sink& sink, const live_stats_callback& on_stop) {
  stop_signals signals;
  sensor_stats stats;
  live_counters lc;
  lc.device = options.device;
  packet_filter filter = packet_filter::compile(options.filter, options.snaplen);
  // The flow table is allocated (and its pages touched) before capture
  // starts, so the first packets do not wait for it.
  flow_engine engine(options.engine);

  const bool want_xdp = options.capture != capture_mode::pcap;
  const bool xdp_required = options.capture == capture_mode::xdp && options.capture_explicit;
#ifdef FLOWER_HAVE_XDP
  if (want_xdp) {
    const rss_report rss = check_rss_symmetry(options.device);
    lc.rss_checked = rss.checked;
    lc.rss_symmetric = rss.symmetric;
    lc.rss_note = rss.note;
    if (rss.checked && !rss.symmetric)
      std::fprintf(stderr, "flower-sensor: %s: %s\n", options.device.c_str(), rss.note.c_str());
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
      report_xdp_start(*src, lc);
      meter_dispatch(*src, engine, filter, sink, stats);
      collect_xdp(*src, lc);
      src.reset();  // detach before reporting
      if (on_stop) on_stop(stats, lc);
      return 0;
    }
  }
#else
  if (xdp_required) throw std::runtime_error("this flower-sensor was built without XDP support (FLOWER_BPF=OFF)");
  if (want_xdp) lc.fallback_reason = "built without XDP support";
#endif

  pcap_live_config pc;
  pc.device = options.device;
  pc.filter = options.filter;  // in the kernel: the user-space filter is not needed
  pc.snaplen = options.snaplen;
  pc.buffer_bytes = options.pcap_buffer_bytes;
  pcap_live_source src = pcap_live_source::open(pc);
  if (!src.warning().empty())
    std::fprintf(stderr, "flower-sensor: %s: %s\n", options.device.c_str(), src.warning().c_str());
  if (options.sample_rate > 1)
    std::fprintf(stderr, "flower-sensor: --sample applies to XDP only; libpcap meters every packet\n");
  if (options.xdp_ip_version != 0 || !options.xdp_protocols.empty())
    std::fprintf(stderr, "flower-sensor: --xdp-ip-version/--xdp-proto apply to XDP only; "
                         "with libpcap use a filter expression (e.g. 'ip and udp')\n");
  lc.front_end = capture_mode::pcap;
  std::fprintf(stderr, "flower-sensor: capturing on %s with pcap (buffer %u KiB, snaplen %u)\n",
               options.device.c_str(), options.pcap_buffer_bytes >> 10, options.snaplen);
  packet_filter none;
  meter_dispatch(src, engine, none, sink, stats);
  const pcap_live_stats ps = src.stats();
  lc.pcap = {ps.ps_recv, ps.ps_drop, ps.ps_ifdrop};
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
    j += ",\"queues\":[";
    for (size_t i = 0; i < c.queues.size(); ++i) {
      const auto& q = c.queues[i];
      j += (i ? "," : "") + std::string("{\"queue\":") + std::to_string(q.queue_id) +
           ",\"zero_copy\":" + (q.zero_copy ? "true" : "false") + ",\"rx_packets\":" + std::to_string(q.rx_packets) +
           ",\"rx_dropped\":" + std::to_string(q.rx_dropped) + ",\"rx_invalid_descs\":" + std::to_string(q.rx_invalid_descs) +
           ",\"rx_ring_full\":" + std::to_string(q.rx_ring_full) +
           ",\"fill_ring_empty_descs\":" + std::to_string(q.fill_ring_empty_descs) + "}";
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
      s += "  queue " + std::to_string(q.queue_id) + (q.zero_copy ? " zero-copy" : " copy") + ": rx " +
           std::to_string(q.rx_packets) + ", rx_dropped " + std::to_string(q.rx_dropped) + ", rx_ring_full " +
           std::to_string(q.rx_ring_full) + ", fill_ring_empty " + std::to_string(q.fill_ring_empty_descs) + "\n";
  } else if (c.front_end == capture_mode::pcap) {
    s += "  pcap: ps_recv " + std::to_string(c.pcap.ps_recv) + ", ps_drop " + std::to_string(c.pcap.ps_drop) +
         ", ps_ifdrop " + std::to_string(c.pcap.ps_ifdrop) + "\n";
  }
  return s;
}

}  // namespace flower
