#include "sensor/front_end.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "sensor/ip_protocols.h"

namespace flower {

front_end_choice choose_front_end(const sensor_options& o, bool is_netdev, bool built_with_xdp) {
  front_end_choice c;
  const bool want_xdp = o.capture != capture_mode::pcap;
  c.xdp_required = o.capture == capture_mode::xdp && o.capture_explicit;
  if (!want_xdp) return c;
  if (!built_with_xdp) {
    c.fallback_reason = "built without XDP support";
    return c;
  }
  c.try_xdp = is_netdev || c.xdp_required;
  if (!c.try_xdp) c.fallback_reason = "not a network interface";
  return c;
}

queue_plan plan_queues(const std::string& device, size_t queues, const rss_state& rss, bool assume_symmetric,
                       unsigned requested, unsigned cores) {
  queue_plan p;
  p.rss = rss;
  cores = std::max(1u, cores);
  if (queues > 1 && !rss.checked && assume_symmetric) {
    p.rss.checked = p.rss.symmetric = true;
    p.rss.note = "RSS assumed symmetric (--assume-symmetric-rss)";
  }
  if (queues <= 1) return p;
  p.per_queue = p.rss.checked && p.rss.symmetric;
  if (p.per_queue) p.threads = static_cast<unsigned>(std::min<size_t>(requested ? requested : cores, queues));
  else p.threads = requested != 0 ? requested : file_threads(0, cores);
  const std::string head = device + ": " + p.rss.note + "; ";
  const std::string n = std::to_string(queues), t = std::to_string(p.threads);
  if (p.per_queue)
    p.line = head + n + " queues run to completion on " + t + (p.threads == 1 ? " thread" : " threads");
  else if (p.threads > 1)
    p.line = head + "re-sharding in software: one thread reads the " + n + " queues, flows are hashed onto " + t +
             " shards";
  else
    p.line = head + "re-sharding in software: one thread meters all " + n +
             " queues, so both directions of a flow still meet";
  return p;
}

unsigned file_threads(unsigned requested, unsigned cores) {
  if (requested != 0) return requested;
  cores = std::max(1u, cores);
  return cores <= 2 ? 1 : cores - 1;
}

std::vector<std::string> pcap_ignored_options(const sensor_options& o) {
  std::vector<std::string> lines;
  if (o.sample_rate > 1) lines.push_back("--sample applies to XDP only; libpcap meters every packet");
  if (o.xdp_ip_version != 0 || !o.xdp_protocols.empty())
    lines.push_back("--xdp-ip-version/--xdp-proto apply to XDP only; with libpcap use a filter expression "
                    "(e.g. 'ip and udp')");
  if (!o.queues.empty()) lines.push_back("--queues applies to XDP only; libpcap captures every queue");
  return lines;
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

}  // namespace flower
