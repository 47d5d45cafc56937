#include "sensor/report.h"

#include <nlohmann/json.hpp>

#include "exporter/ledger_report.h"

namespace flower {
namespace {

using ojson = nlohmann::ordered_json;

ojson queue_json(const xdp_queue_counters& q, xdp_attach_mode mode) {
  return {{"queue", q.queue_id},
          {"xdp_mode", name_of(mode)},
          {"bind", q.zero_copy ? "zero-copy" : "copy"},
          {"busy_poll", q.busy_poll},
          {"zero_copy", q.zero_copy},
          {"rx_packets", q.rx_packets},
          {"rx_dropped", q.rx_dropped},
          {"rx_invalid_descs", q.rx_invalid_descs},
          {"rx_ring_full", q.rx_ring_full},
          {"fill_ring_empty_descs", q.fill_ring_empty_descs},
          {"metadata_frames", q.metadata_frames},
          {"hw_timestamps", q.hw_timestamps},
          {"hw_timestamps_unsynced", q.hw_timestamps_unsynced}};
}

ojson live_object(const live_counters& c) {
  ojson j = {{"device", c.device}, {"front_end", name_of(c.front_end)}, {"fallback_reason", c.fallback_reason}};
  if (c.front_end == capture_mode::xdp) {
    j["xdp_mode"] = name_of(c.xdp_mode);
    j["replaced_stale_program"] = c.replaced_stale_program;
    j["timestamps"] = c.hw_timestamps ? "xdp-metadata" : "batch-clock";
    ojson queues = ojson::array();
    for (const xdp_queue_counters& q : c.queues) queues.push_back(queue_json(q, c.xdp_mode));
    j["queues"] = std::move(queues);
    const xdp_program_counters& p = c.program;
    j["program"] = {{"seen", p.seen},         {"redirected", p.redirected},   {"passed", p.passed},
                    {"dropped", p.dropped},   {"prefiltered", p.prefiltered}, {"sampled_out", p.sampled_out},
                    {"no_socket", p.no_socket}};
  } else {
    j["pcap"] = {{"ps_recv", c.pcap.ps_recv}, {"ps_drop", c.pcap.ps_drop}, {"ps_ifdrop", c.pcap.ps_ifdrop}};
  }
  j["rss"] = {{"checked", c.rss_checked}, {"symmetric", c.rss_symmetric}, {"note", c.rss_note}};
  return j;
}

}  // namespace

const char* name_of(capture_mode m) noexcept {
  return m == capture_mode::xdp ? "xdp" : m == capture_mode::pcap ? "pcap" : "none";
}
const char* name_of(xdp_attach_mode m) noexcept {
  return m == xdp_attach_mode::native ? "native" : m == xdp_attach_mode::generic ? "generic" : "none";
}

std::string stats_json(const sensor_report& r, const live_counters* live) {
  ojson j = r.ledger;
  if (r.threads != 0) j["threads"] = r.threads;
  if (r.hash_seed) j["hash_seed"] = *r.hash_seed;
  if (r.file) j["file"] = {{"bad_interface", r.file->bad_interface}, {"bad_timestamp", r.file->bad_timestamp}};
  j["input_truncated"] = r.input_truncated;
  if (live) j["live"] = live_object(*live);
  // Invalid UTF-8 (a device or error text) is replaced, never a throw at exit.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string to_text(const sensor_report& r) { return to_text(r.ledger); }

std::string to_text(const live_counters& c) {
  std::string s = "live " + c.device + ": " + name_of(c.front_end);
  if (!c.fallback_reason.empty()) s += " (fell back: " + c.fallback_reason + ")";
  s += "\n";
  if (c.front_end == capture_mode::xdp) {
    const xdp_program_counters& p = c.program;
    s += "  xdp " + std::string(name_of(c.xdp_mode)) + ": seen " + std::to_string(p.seen) + ", redirected " +
         std::to_string(p.redirected) + ", passed " + std::to_string(p.passed) + " (no socket " +
         std::to_string(p.no_socket) + ", prefiltered " + std::to_string(p.prefiltered) + ", sampled out " +
         std::to_string(p.sampled_out) + "), dropped " + std::to_string(p.dropped) + "\n";
    for (const xdp_queue_counters& q : c.queues) {
      s += "  queue " + std::to_string(q.queue_id) + " " + name_of(c.xdp_mode) + (q.zero_copy ? " zero-copy" : " copy") +
           (q.busy_poll ? "+busy-poll" : "") + ": rx " + std::to_string(q.rx_packets) + ", rx_dropped " +
           std::to_string(q.rx_dropped) + ", rx_ring_full " + std::to_string(q.rx_ring_full) + ", fill_ring_empty " +
           std::to_string(q.fill_ring_empty_descs);
      if (c.hw_timestamps)
        s += ", hw timestamps " + std::to_string(q.hw_timestamps) + " of " + std::to_string(q.metadata_frames) +
             " stamped frames (" + std::to_string(q.hw_timestamps_unsynced) + " off the system clock)";
      s += "\n";
    }
  } else if (c.front_end == capture_mode::pcap) {
    s += "  pcap: ps_recv " + std::to_string(c.pcap.ps_recv) + ", ps_drop " + std::to_string(c.pcap.ps_drop) +
         ", ps_ifdrop " + std::to_string(c.pcap.ps_ifdrop) + "\n";
  }
  return s;
}

}  // namespace flower
