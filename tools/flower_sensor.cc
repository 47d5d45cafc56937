// flower-sensor: meters packets from a capture file (-r) or an interface
// (-i/-d) into bidirectional flow records.
//
// This file only wires libraries together: the command line, the run loop
// for files, the output sinks and the exit status. The live run loop is in
// sensor_live.cc.

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "capture/capture_file.h"
#include "capture/packet_filter.h"
#include "exporter/json_writer.h"
#include "pipeline/flow_engine.h"
#include "pipeline/parallel_engine.h"
#include "tools/sensor_live.h"
#include "tools/sensor_options.h"
#include "tools/sensor_stats.h"
#include "tools/text_writer.h"

namespace flower {
namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop.store(true, std::memory_order_relaxed); }

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a vanished reader shows up as a write error
}

bool decodable(link_type link) {
  switch (link) {
    case link_type::null:
    case link_type::ethernet:
    case link_type::ppp:
    case link_type::raw:
    case link_type::loop:
    case link_type::linux_sll:
    case link_type::ipv4:
    case link_type::ipv6:
    case link_type::nflog:
    case link_type::linux_sll2:
      return true;
  }
  return false;
}

// The file as a pipeline source: applies the filter and counts what it
// delivered and what the filter took, so the ledger starts at the file.
class filtered_file_source {
 public:
  filtered_file_source(capture_file& file, packet_filter& filter, sensor_stats& stats)
      : file_(&file), filter_(&filter), stats_(&stats) {}

  size_t next_batch(std::span<packet_view> out) noexcept {
    while (!g_stop.load(std::memory_order_relaxed)) {
      const size_t n = file_->next_batch(out);
      if (n == 0) return 0;
      stats_->received += n;
      const size_t kept = filter_->keep_matching(out.first(n));
      stats_->filtered += n - kept;
      if (kept != 0) return kept;
    }
    return 0;
  }

 private:
  capture_file* file_;
  packet_filter* filter_;
  sensor_stats* stats_;
};

// Worker threads for a file: --threads, or all cores when there are enough
// of them for the dispatcher to have one of its own (see docs/architecture.md:
// on two cores one run-to-completion thread beats a dispatcher plus workers).
unsigned file_threads(unsigned requested) {
  if (requested != 0) return requested;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return cores <= 2 ? 1 : cores - 1;
}

int run_file(const sensor_options& opt, record_sink& sink, sensor_stats& stats) {
  capture_file file = capture_file::open(opt.read_file);
  if (!decodable(file.first_link_type())) {
    throw capture_error("unsupported link type " + std::to_string(static_cast<unsigned>(file.first_link_type())) +
                        " in " + opt.read_file + " (see docs/decoding.md for the supported ones)");
  }
  packet_filter filter = packet_filter::compile(opt.filter);
  filtered_file_source source(file, filter, stats);

  const unsigned threads = file_threads(opt.threads);
  if (threads == 1) {
    flow_engine engine(opt.engine);
    record_buffer out(sink);
    std::array<packet_view, kPipelineBatch> batch;
    while (size_t n = source.next_batch(batch)) engine.process({batch.data(), n}, out);
    engine.finish(out);
    out.flush();
    stats.engine = engine.counters();
  } else {
    parallel_config config;
    config.engine = opt.engine;
    config.threads = threads;
    parallel_engine engine(config, sink);
    engine.run(source);
    engine.finish();
    stats.engine = engine.counters();
    // One counter per shard ring, so the ledger names that stage even though
    // an offline run waits instead of dropping (all zeros).
    stats.ring_dropped = engine.ledger().ring_full;
  }
  stats.threads = threads;
  // pcapng packets naming an interface the file never declared have no link
  // type and cannot be decoded: the reader skips them, so they are counted
  // as lost by the source (before `received`) rather than not at all.
  stats.source_dropped = file.counters().bad_interface;
  if (file.truncated()) {
    stats.input_truncated = true;
    stats.input_error = opt.read_file + ": " + file.truncation_reason();
  }
  return 0;
}

}  // namespace

}  // namespace flower

int main(int argc, char** argv) {
  using namespace flower;
  sensor_options opt;
  double idle_s = 30, active_s = 1800, linger_s = 2;
  uint32_t max_flows = opt.engine.table.max_flows;
  bool no_decap = false, quiet = false;
  std::vector<std::string> filter_words;
  std::string capture = "auto", xdp_mode = "auto", zero_copy = "auto";

  CLI::App app{
      "flower-sensor: meter packets into bidirectional flow records.\n"
      "Reads a pcap/pcapng file (-r) or captures from an interface (-i/-d), and\n"
      "prints records as they end (--json for JSON Lines; fields in docs/records.md).\n"
      "A trailing tcpdump-style filter expression selects packets, e.g. 'tcp port 443'.",
      "flower-sensor"};
  app.get_formatter()->column_width(34);
  auto* read_opt = app.add_option("-r,--read", opt.read_file, "Read packets from a pcap or pcapng FILE ('-' = stdin)")
                       ->type_name("FILE");
  auto* dev_opt = app.add_option("-i,-d,--interface", opt.device, "Capture live from interface DEV")->type_name("DEV");
  read_opt->excludes(dev_opt);
  app.add_flag("--json", opt.json, "Print one JSON object per flow record on stdout");
  app.add_option("--stats-json", opt.stats_json, "Write the packet ledger and counters as JSON to PATH at exit")
      ->type_name("PATH");
  app.add_flag("-q,--quiet", quiet, "Do not print the summary on stderr");
  app.add_option("--max-flows", max_flows, "Flow table size: concurrent flows before eviction")
      ->check(CLI::Range(1u, 1u << 30))
      ->capture_default_str();
  app.add_option("--idle-timeout", idle_s, "Export a flow after SEC seconds without packets (0 = never)")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  app.add_option("--active-timeout", active_s, "Export long flows every SEC seconds and continue them (0 = never)")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  app.add_option("--tcp-linger", linger_s, "Keep a TCP flow SEC seconds after FIN both ways or RST")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_flag("--no-decap", no_decap, "Meter tunnels as outer flows instead of decapsulating them");
  app.add_option("--threads", opt.threads,
                 "Flow-table shards, one worker thread each (0 = auto: all cores but the dispatcher's; 1 on <= 2 cores)")->check(CLI::Range(0u, 1024u));
  app.add_option("-f,--filter", opt.filter, "BPF filter expression (same as trailing words)")->type_name("EXPR");
  app.add_option("--capture", capture, "Live front end: xdp or pcap (default: xdp, falling back to pcap)")
      ->check(CLI::IsMember({"auto", "xdp", "pcap"}));
  app.add_option("--xdp-mode", xdp_mode, "XDP attach mode")->check(CLI::IsMember({"auto", "native", "generic"}));
  app.add_option("--zero-copy", zero_copy, "AF_XDP zero-copy")->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--queues", opt.queues, "RX queues to capture from, e.g. 0,1 (default: all)")
      ->delimiter(',')
      ->allow_extra_args(false)  // one LIST per flag: later words stay the filter expression
      ->type_name("LIST");
  app.add_flag("--rss-symmetric", opt.rss_symmetric, "Set the symmetric 6d:5a RSS key if the NIC's hash is not symmetric");
  app.add_option("--snaplen", opt.snaplen, "libpcap snapshot length")->capture_default_str();
  app.add_option("--buffer-size", opt.pcap_buffer_bytes, "libpcap kernel buffer in bytes")->capture_default_str();
  app.add_option("--xdp-frames", opt.xdp_frames, "UMEM frames per AF_XDP queue")->capture_default_str();
  app.add_option("--xdp-frame-size", opt.xdp_frame_size, "UMEM frame size")->capture_default_str();
  app.add_flag("--busy-poll", opt.busy_poll, "Busy-poll the AF_XDP sockets");
  std::string timestamps = "auto";
  app.add_option("--timestamps", timestamps,
                 "XDP packet times: auto = the driver's receive time via XDP metadata when it gives one "
                 "(native mode), else one clock read per batch; clock = always the batch clock")
      ->check(CLI::IsMember({"auto", "clock"}))
      ->capture_default_str();
  app.add_option("--sample", opt.sample_rate, "Keep 1 in N packets in the XDP program (0 = all)");
  app.add_option("--xdp-ip-version", opt.xdp_ip_version, "XDP passes only IPv4 or IPv6 frames to the meter")
      ->check(CLI::IsMember({4u, 6u}));
  app.add_option("--xdp-proto", opt.xdp_protocols, "XDP passes only these IP protocols (tcp,udp,... or numbers)")
      ->type_name("LIST")
      ->check(CLI::Validator(
          [](std::string& s) {
            std::vector<uint8_t> p;
            std::string error;
            return parse_ip_protocol_list(s, p, error) ? std::string() : error;
          },
          "LIST"));
  auto* daemon_opt = app.add_flag("-b,--daemon", opt.daemon, "Run in the background (pidfile, log to --log or syslog)")
                         ->needs(dev_opt);
  app.add_option("--pidfile", opt.pidfile, "PID file for -b (default: /run/flower-sensor-DEV.pid)")->needs(daemon_opt);
  app.add_option("--log", opt.log_file, "Log file for -b (default: syslog)")->needs(daemon_opt);
  app.add_option("-s,--server", opt.server, "Analysis server address for the ZeroMQ feed");
  app.add_option("filter", filter_words, "tcpdump-style filter expression")->type_name("EXPR...");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "flower-sensor: %s (see --help)\n", e.what());
    return 2;
  }
  if (opt.read_file.empty() && opt.device.empty()) {
    std::fprintf(stderr, "flower-sensor: nothing to read: give -r FILE or -i DEV (see --help)\n");
    return 2;
  }
  for (const std::string& w : filter_words) opt.filter += (opt.filter.empty() ? "" : " ") + w;
  opt.engine.table.max_flows = max_flows;
  opt.engine.table.idle_timeout_ns = static_cast<uint64_t>(idle_s * 1e9);
  opt.engine.table.active_timeout_ns = static_cast<uint64_t>(active_s * 1e9);
  opt.engine.table.tcp_linger_ns = static_cast<uint64_t>(linger_s * 1e9);
  opt.engine.decode.decapsulate_tunnels = !no_decap;
  opt.capture = capture == "xdp" ? capture_mode::xdp : capture == "pcap" ? capture_mode::pcap : capture_mode::auto_select;
  opt.capture_explicit = capture != "auto";
  opt.xdp_mode = xdp_mode == "native"    ? xdp_attach_mode::native
                 : xdp_mode == "generic" ? xdp_attach_mode::generic
                                         : xdp_attach_mode::auto_select;
  opt.zero_copy = zero_copy == "on" ? zero_copy_mode::on : zero_copy == "off" ? zero_copy_mode::off : zero_copy_mode::auto_select;
  opt.clock_timestamps = timestamps == "clock";

  install_signal_handlers();
  sensor_stats stats;
  std::string live_json, live_summary;  // filled by the live run loop
  int rc = 0;
  try {
    std::unique_ptr<record_sink> sink;
    json_writer* json = nullptr;
    text_writer* text = nullptr;
    if (opt.json) {
      auto w = std::make_unique<json_writer>(STDOUT_FILENO);
      json = w.get();
      sink = std::move(w);
    } else {
      auto w = std::make_unique<text_writer>(STDOUT_FILENO);
      text = w.get();
      sink = std::move(w);
    }
    if (opt.read_file.empty()) {
      rc = run_live(opt, *sink, [&](const sensor_stats& s, const live_counters& l) {
        stats = s;
        live_json = live_counters_json(l);
        live_summary = live_counters_summary(l);
      });
    } else {
      rc = run_file(opt, *sink, stats);
    }
    if (json) {
      json->flush();
      stats.records_written = json->records_written();
      stats.output_errors = json->write_errors();
    } else {
      text->flush();
      stats.records_written = text->records_written();
      stats.output_errors = text->write_errors();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flower-sensor: %s\n", e.what());
    return 1;
  }

  if (!opt.stats_json.empty()) {
    std::ofstream f(opt.stats_json);
    std::string text = stats_to_json(stats);
    if (!live_json.empty()) {  // splice the live front end's counters in
      text.erase(text.find_last_of('}'));
      text += ",\"live\":" + live_json + "}\n";
    }
    f << text;
    if (!f) {
      std::fprintf(stderr, "flower-sensor: cannot write %s: %s\n", opt.stats_json.c_str(), std::strerror(errno));
      rc = 1;
    }
  }
  if (!quiet) {
    std::fputs(stats_summary(stats).c_str(), stderr);
    std::fputs(live_summary.c_str(), stderr);
  }
  if (stats.output_errors != 0) {
    std::fprintf(stderr, "flower-sensor: writing records to stdout failed; output is incomplete\n");
    rc = 1;
  }
  if (stats.input_truncated) {
    std::fprintf(stderr, "flower-sensor: %s\n", stats.input_error.c_str());
    rc = 1;
  }
  if (!stats.conserved()) {
    std::fprintf(stderr, "flower-sensor: internal error: packet ledger does not balance\n");
    rc = 1;
  }
  return rc;
}
