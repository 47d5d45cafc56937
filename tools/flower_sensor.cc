// flower-sensor: meters packets from a capture file (-r) or an interface
// (-i/-d) into bidirectional flow records.
//
// This file is the command line and the wiring: the table of options, the
// output sink, the exit status. The run loops, the front-end policy and the
// renderings are the flower::sensor library (sensor/).

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <charconv>
#include <cinttypes>
#include <cstdint>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "exporter/feed/feed_publisher.h"
#include "exporter/json_writer.h"
#include "sensor/front_end.h"
#include "sensor/ip_protocols.h"
#include "sensor/memory_check.h"
#include "sensor/report.h"
#include "sensor/run_file.h"
#include "sensor/run_live.h"
#include "sensor/sensor_options.h"
#include "sensor/text_writer.h"
#include "tools/stop_signals.h"

namespace flower {
namespace {

// Records to stdout and to the feed: the writer first, then the publisher's
// queue (a copy; it never waits unless the run is a file, see feed_options).
class record_tee final : public record_sink {
 public:
  record_tee(record_sink& first, record_sink& second) : first_(first), second_(second) {}
  void consume(std::span<const flow_record> records) override {
    first_.consume(records);
    second_.consume(records);
  }

 private:
  record_sink& first_;
  record_sink& second_;
};

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
  std::optional<uint64_t> hash_seed;
  app.add_option("--hash-seed", hash_seed, "Seed of the flow hash (default: random per run); repeats a run exactly")
      ->check(CLI::Validator(  // all 64 bits, no sign: CLI11 alone would wrap "-1" and clamp 2^64
          [](std::string& text) {
            uint64_t v = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
            return ec == std::errc() && end == text.data() + text.size() && !text.empty()
                       ? std::string()
                       : "'" + text + "' is not a number in 0.." + std::to_string(UINT64_MAX);
          },
          "0.." + std::to_string(UINT64_MAX)))
      ->type_name("N");
  app.add_option("--threads", opt.threads,
                 "Flow-table shards, one worker thread each (0 = auto: all cores but the dispatcher's; 1 on <= 2 cores)")->check(CLI::Range(0u, 1024u));
  app.add_option("-f,--filter", opt.filter, "BPF filter expression (same as trailing words)")->type_name("EXPR");
  app.add_option("--capture", capture, "Live front end: xdp or pcap (default: pcap on an interface with addresses or routes, so the host keeps its traffic; else xdp, falling back to pcap)")
      ->check(CLI::IsMember({"auto", "xdp", "pcap"}));
  app.add_option("--xdp-mode", xdp_mode, "XDP attach mode")->check(CLI::IsMember({"auto", "native", "generic"}));
  app.add_option("--zero-copy", zero_copy, "AF_XDP zero-copy")->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--queues", opt.queues, "RX queues to capture from, e.g. 0,1 (default: all)")
      ->delimiter(',')
      ->allow_extra_args(false)  // one LIST per flag: later words stay the filter expression
      ->type_name("LIST");
  app.add_flag("--rss-symmetric", opt.rss_symmetric, "Set the symmetric 6d:5a RSS key if the NIC's hash is not symmetric");
  app.add_flag("--assume-symmetric-rss", opt.assume_symmetric_rss,
               "Treat an RSS hash the driver cannot report as symmetric: meter each queue on its own thread "
               "(wrong if it is not: flows would be split)");
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
  // The ZeroMQ feed (docs/feed.md).
  std::vector<std::string> publish;
  std::string feed_format_name = "protobuf", sensor_id;
  size_t wait_subscribers = 0;
  double wait_timeout_s = 10;
  app.add_option("--publish", publish,
                 "Publish records on the ZeroMQ feed: bind ENDPOINT (tcp://ADDR:PORT or ipc://PATH; repeatable; "
                 "without a value " + std::string(kDefaultPublishEndpoint) + ")")
      ->expected(0, 1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->default_str(kDefaultPublishEndpoint)
      ->type_name("[ENDPOINT]")
      ->check(CLI::Validator(
          [](std::string& e) {
            return e.find("://") != std::string::npos ? std::string()
                                                      : "'" + e + "' is not an endpoint (tcp://ADDR:PORT or ipc://PATH)";
          },
          ""));
  app.add_option("-s,--server", opt.server,
                 "Connect the feed to an analysis server's collector at HOST[:PORT] (default port " +
                     std::to_string(kDefaultCollectorPort) + ")")
      ->type_name("HOST[:PORT]");
  app.add_option("--feed-format", feed_format_name, "Feed encoding: protobuf (flower.v1) or json")
      ->check(CLI::IsMember({"protobuf", "json"}))
      ->capture_default_str();
  app.add_option("--sensor-id", sensor_id, "This sensor's name in every feed message (default: the host name)")
      ->type_name("ID");
  app.add_option("--wait-subscribers", wait_subscribers,
                 "Before reading, wait (at most --wait-timeout) for N feed subscribers to the flow topic")
      ->type_name("N");
  app.add_option("--wait-timeout", wait_timeout_s, "Longest wait for --wait-subscribers, in seconds")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  // CURVE (docs/feed.md, "Security").
  std::string feed_secret_key, feed_allowed_keys, feed_server_key;
  app.add_option("--feed-secret-key", feed_secret_key,
                 "Encrypt the feed with CURVE: this sensor's key pair (flower-keys PREFIX makes PREFIX.secret)")
      ->type_name("FILE");
  app.add_option("--feed-allowed-keys", feed_allowed_keys,
                 "With --publish and --feed-secret-key: the subscribers' public keys admitted (one per line)")
      ->type_name("FILE");
  app.add_option("--feed-server-key", feed_server_key,
                 "With -s and --feed-secret-key: the collector's public key (its PREFIX.pub)")
      ->type_name("FILE");
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
  const bool feed_on = !publish.empty() || !opt.server.empty();
  if (feed_on && opt.daemon) {
    // The publisher's threads would not survive the daemon's fork.
    std::fprintf(stderr, "flower-sensor: the feed (--publish, -s) cannot be combined with -b yet\n");
    return 2;
  }
  if (!feed_on && (wait_subscribers != 0 || !sensor_id.empty() || app.count("--feed-format") != 0)) {
    std::fprintf(stderr, "flower-sensor: --feed-format, --sensor-id and --wait-subscribers need --publish or -s\n");
    return 2;
  }
  curve_options curve;
  {
    const bool any = !feed_secret_key.empty() || !feed_allowed_keys.empty() || !feed_server_key.empty();
    const char* missing = nullptr;
    if (any && feed_secret_key.empty()) missing = "--feed-allowed-keys and --feed-server-key need --feed-secret-key";
    else if (any && !feed_on) missing = "--feed-secret-key needs --publish or -s";
    else if (any && !publish.empty() && feed_allowed_keys.empty())
      missing = "--publish with --feed-secret-key needs --feed-allowed-keys (the subscribers admitted)";
    else if (any && !opt.server.empty() && feed_server_key.empty())
      missing = "-s with --feed-secret-key needs --feed-server-key (the collector's public key)";
    else if (!feed_allowed_keys.empty() && publish.empty()) missing = "--feed-allowed-keys needs --publish";
    else if (!feed_server_key.empty() && opt.server.empty()) missing = "--feed-server-key needs -s";
    if (missing != nullptr) {
      std::fprintf(stderr, "flower-sensor: %s\n", missing);
      return 2;
    }
    if (any) {
      try {
        if (!curve_available()) throw key_file_error("this libzmq has no CURVE support");
        curve.own = read_secret_key_file(feed_secret_key);
        if (!feed_allowed_keys.empty()) curve.allowed_z85 = read_allowed_keys_file(feed_allowed_keys);
        if (!feed_server_key.empty()) curve.server_public_z85 = read_public_key_file(feed_server_key);
      } catch (const key_file_error& e) {
        std::fprintf(stderr, "flower-sensor: %s\n", e.what());
        return 2;
      }
    }
  }
  opt.engine.table.max_flows = max_flows;
  opt.engine.hash_seed = hash_seed;
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

  std::atomic<bool>& stop = install_stop_signals();  // for -r; run_live has its own
  sensor_report report;
  std::optional<live_counters> live;
  int rc = 0;
  try {
    // Refuse a table the machine cannot hold now, not when it fills.
    const unsigned cores = std::thread::hardware_concurrency();
    check_engine_memory(opt.engine, opt.read_file.empty() ? std::max(1u, opt.threads) : file_threads(opt.threads, cores),
                        mem_available_bytes());
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
    std::unique_ptr<feed_publisher> feed;
    std::optional<record_tee> tee;
    if (feed_on) {
      feed_options fo;
      fo.bind = publish;
      if (!opt.server.empty()) fo.connect = {collector_endpoint(opt.server)};
      parse_feed_format(feed_format_name, fo.format);
      fo.sensor_id = sensor_id;
      fo.curve = curve;
      fo.wait_when_full = !opt.read_file.empty();  // a file loses nothing by waiting
      feed = std::make_unique<feed_publisher>(std::move(fo));
      if (wait_subscribers != 0) {
        const size_t n = feed->wait_subscribers(
            wait_subscribers, std::chrono::milliseconds(static_cast<int64_t>(wait_timeout_s * 1000)));
        if (n < wait_subscribers)
          std::fprintf(stderr, "flower-sensor: feed: %zu of %zu subscribers after %g s; publishing anyway\n", n,
                       wait_subscribers, wait_timeout_s);
      }
      tee.emplace(*sink, *feed);
    }
    record_sink& out = tee ? static_cast<record_sink&>(*tee) : *sink;
    if (opt.read_file.empty()) {
      // With the feed, "stats" about once a second while capturing (on the
      // thread that writes the records, so the writer's count is its own).
      live_progress_callback progress;
      if (feed)
        progress = [&](const drop_ledger& so_far, const live_counters& l) {
          drop_ledger ledger = so_far;
          ledger.records_written = json ? json->records_written() : text->records_written();
          ledger.output_errors = json ? json->write_errors() : text->write_errors();
          ledger.exporter_dropped = feed->counters().export_dropped();
          std::vector<queue_counters> queues;
          for (const xdp_queue_counters& q : l.queues)
            queues.push_back({q.queue_id, q.rx_packets, q.rx_dropped + q.rx_ring_full});
          feed->publish_stats(ledger, queues);
        };
      rc = run_live(
          opt, out,
          [&](const sensor_report& r, const live_counters& l) {
            report = r;
            live = l;
          },
          progress,
          [&] {
            // The flows still open leave in one burst at stop, larger than
            // the feed's queue: wait for room (bounded per send) rather than
            // drop them.
            if (feed) feed->wait_from_now_on();
          });
    } else {
      run_file(opt, out, report, stop);
    }
    if (json) {
      json->flush();
      report.ledger.records_written = json->records_written();
      report.ledger.output_errors = json->write_errors();
    } else {
      text->flush();
      report.ledger.records_written = text->records_written();
      report.ledger.output_errors = text->write_errors();
    }
    if (feed) {
      // The final ledger on "stats", then everything queued (bounded linger).
      report.ledger.exporter_dropped = feed->counters().export_dropped();
      feed->publish_stats(report.ledger);
      feed->close();
      report.ledger.exporter_dropped = feed->counters().export_dropped();
      if (feed->curve_refused() != 0 && !quiet)
        std::fprintf(stderr, "flower-sensor: feed: refused %" PRIu64 " CURVE handshakes (key not in %s)\n",
                     feed->curve_refused(), feed_allowed_keys.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flower-sensor: %s\n", e.what());
    return 1;
  }

  if (!opt.stats_json.empty()) {
    std::ofstream f(opt.stats_json);
    f << stats_json(report, live ? &*live : nullptr);
    f.close();
    if (!f) {
      std::fprintf(stderr, "flower-sensor: cannot write %s: %s\n", opt.stats_json.c_str(), std::strerror(errno));
      rc = 1;
    }
  }
  if (!quiet) {
    std::fputs(to_text(report).c_str(), stderr);
    if (live) std::fputs(to_text(*live).c_str(), stderr);
  }
  if (report.ledger.output_errors != 0) {
    std::fprintf(stderr, "flower-sensor: writing records to stdout failed; output is incomplete\n");
    rc = 1;
  }
  if (report.input_truncated) {
    std::fprintf(stderr, "flower-sensor: %s\n", report.input_error.c_str());
    rc = 1;
  }
  if (!report.ledger.reconciles()) {
    std::fprintf(stderr, "flower-sensor: internal error: packet ledger does not balance\n");
    rc = 1;
  }
  return rc;
}
