#pragma once
// pcap_live_source: libpcap live capture (the fallback front end, and the
// one for devices without XDP). Frames are copied out of libpcap's ring into
// an arena owned by the source, so views stay valid until release_batch(),
// or, with held_batches = N > 1, until N more batches were taken (what
// parallel_engine::run() needs: it decodes several batches at once).
//
//   pcap_live_config cfg{.device = "eth0", .filter = "tcp"};
//   pcap_live_source src = pcap_live_source::open(cfg);   // throws capture_error
//   size_t n = src.next_batch(views, 100);                 // live_source
//   ...
//   pcap_live_stats s = src.stats();                       // pcap_stats()
//
// Only received frames are captured (pcap_setdirection PCAP_D_IN), as with
// XDP, so both front ends meter the same packets. Timestamps are the
// kernel's per-packet times in nanoseconds.

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "capture/capture_file.h"
#include "pipeline/packet.h"

namespace flower {

struct pcap_live_config {
  std::string device;
  std::string filter;                  // tcpdump expression, empty = all
  uint32_t snaplen = 262144;
  uint32_t buffer_bytes = 64u << 20;   // kernel ring (pcap_set_buffer_size)
  bool promiscuous = true;
  bool immediate = true;               // deliver without waiting for a full block
  uint32_t held_batches = 1;           // arenas rotated: a batch's views outlive N - 1 later batches
};

struct pcap_live_stats {
  uint64_t ps_recv = 0;
  uint64_t ps_drop = 0;
  uint64_t ps_ifdrop = 0;
  uint64_t delivered = 0;              // frames handed out as views
};

class pcap_live_source {
 public:
  static pcap_live_source open(const pcap_live_config& config);

  pcap_live_source(pcap_live_source&&) noexcept;
  pcap_live_source& operator=(pcap_live_source&&) noexcept;
  ~pcap_live_source();

  size_t next_batch(std::span<packet_view> out, int timeout_ms) noexcept;
  // The parallel_engine Source shape: waits up to 1 ms when nothing is ready.
  size_t next_batch(std::span<packet_view> out) noexcept { return next_batch(out, 1); }
  void release_batch() noexcept;

  link_type link() const noexcept;
  pcap_live_stats stats() const noexcept;
  const std::string& warning() const noexcept;  // pcap_activate warning, if any

 private:
  struct impl;
  explicit pcap_live_source(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace flower
