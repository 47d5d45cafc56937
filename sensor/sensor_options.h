#pragma once
// sensor_options: everything flower-sensor's command line decides, shared by
// the offline (run_file.h) and live (run_live.h) run loops. The command line
// table that fills it is tools/flower_sensor.cc.

#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/flow_engine.h"

namespace flower {

enum class capture_mode : uint8_t { auto_select, xdp, pcap };
enum class xdp_attach_mode : uint8_t { auto_select, native, generic };
enum class zero_copy_mode : uint8_t { auto_select, on, off };

struct sensor_options {
  // Input: exactly one of read_file / device.
  std::string read_file;             // -r FILE
  std::string device;                // -i/-d DEV
  std::string filter;                // BPF expression (trailing arguments or -f)

  // Engine.
  engine_config engine;              // --max-flows, --idle-timeout, --active-timeout, --no-decap, --hash-seed
  unsigned threads = 0;              // --threads, 0 = all cores

  // Output.
  bool json = false;                 // --json: one JSON object per record on stdout
  std::string stats_json;            // --stats-json PATH

  // Live capture.
  capture_mode capture = capture_mode::auto_select;  // --capture xdp|pcap
  bool capture_explicit = false;     // --capture given: no fallback
  xdp_attach_mode xdp_mode = xdp_attach_mode::auto_select;
  zero_copy_mode zero_copy = zero_copy_mode::auto_select;
  std::vector<uint32_t> queues;      // --queues, empty = all
  bool rss_symmetric = false;        // --rss-symmetric: set the 6d:5a RSS key if the hash is not symmetric
  bool assume_symmetric_rss = false; // --assume-symmetric-rss: an RSS hash the driver cannot report counts as symmetric
  uint32_t snaplen = 262144;         // --snaplen (pcap)
  uint32_t pcap_buffer_bytes = 64u << 20;  // --buffer-size
  uint32_t xdp_frames = 4096;        // --xdp-frames (UMEM frames per queue)
  uint32_t xdp_frame_size = 2048;    // --xdp-frame-size
  bool busy_poll = false;            // --busy-poll
  bool clock_timestamps = false;     // --timestamps clock: never the driver's receive time
  uint32_t sample_rate = 0;          // --sample N: XDP keeps 1 in N (0/1 = all)
  unsigned xdp_ip_version = 0;       // --xdp-ip-version 4|6: XDP passes only that version (0 = all)
  std::string xdp_protocols;         // --xdp-proto LIST: e.g. "udp,tcp" or "17,6" (empty = all)
  bool daemon = false;               // -b
  std::string pidfile;               // --pidfile (default /run/flower-sensor-DEV.pid)
  std::string log_file;              // --log FILE (daemon), else syslog
  std::string server;                // -s ADDR (ZeroMQ feed)
};

}  // namespace flower
