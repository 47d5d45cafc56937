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
// Only received frames are metered (pcap_setdirection PCAP_D_IN), as with
// XDP. libpcap applies the direction in user space: the host's own outgoing
// frames still pass through the ring and count in ps_recv.
//
// The ring is TPACKET_V3 (libpcap's non-immediate mode): frames packed
// into blocks by their length. Immediate mode would mean TPACKET_V2, one
// fixed-size slot per frame sized from the snaplen rather than the frame:
// 64 MiB at snaplen 262144 is about a thousand frames, a few milliseconds at
// line rate (docs/PERFORMANCE.md, "libpcap against tcpdump"). A V3 block
// reaches user space when full or block_timeout_ms after its first frame,
// so that is the longest a frame waits in the kernel before next_batch()
// can see it.
//
// Timestamps are the kernel's per-packet times, in nanoseconds whatever the
// precision libpcap granted (microseconds are scaled, see pcap_stamp_ns).

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
  bool immediate = false;              // TPACKET_V2 slots instead of V3 blocks: see above
  uint32_t block_timeout_ms = 10;      // pcap_set_timeout: a V3 block is handed over after this
  bool nanosecond_stamps = true;       // ask for ns stamps (false: microseconds, for tests)
  uint32_t held_batches = 1;           // arenas rotated: a batch's views outlive N - 1 later batches
};

// pcap_stats() counts in 32 bits (2^32 frames: 72 minutes at 1 Mpps); the
// source reads it at least every 2^20 delivered frames and when idle, and
// keeps 64-bit sums.
struct pcap_live_stats {
  uint64_t ps_recv = 0;
  uint64_t ps_drop = 0;
  uint64_t ps_ifdrop = 0;
  uint64_t delivered = 0;              // frames handed out as views
};

// The unit of the fraction libpcap puts in timeval::tv_usec: whatever
// pcap_get_tstamp_precision() says is in force after pcap_activate (the
// value is nanoseconds per tick).
enum class pcap_stamp_unit : uint32_t { microseconds = 1000, nanoseconds = 1 };

// A libpcap time stamp (seconds, fraction in `unit`) in ns since the epoch.
constexpr uint64_t pcap_stamp_ns(uint64_t seconds, uint64_t fraction, pcap_stamp_unit unit) noexcept {
  return seconds * 1'000'000'000ull + fraction * static_cast<uint64_t>(unit);
}

class pcap_live_source {
 public:
  static pcap_live_source open(const pcap_live_config& config);

  pcap_live_source(pcap_live_source&&) noexcept;
  pcap_live_source& operator=(pcap_live_source&&) noexcept;
  ~pcap_live_source();

  // What is readable now; with timeout_ms > 0 and nothing readable, waits
  // up to timeout_ms for a block. timeout_ms = 0 never waits (a drain step).
  size_t next_batch(std::span<packet_view> out, int timeout_ms) noexcept;
  // The parallel_engine Source shape: waits up to 1 ms when nothing is ready.
  size_t next_batch(std::span<packet_view> out) noexcept { return next_batch(out, 1); }
  void release_batch() noexcept;

  link_type link() const noexcept;
  pcap_live_stats stats() const noexcept;
  const std::string& warning() const noexcept;  // pcap_activate warning, refused precision, ...
  // nanoseconds, or microseconds when libpcap refused nanoseconds (or they
  // were not asked for): times are then whole microseconds, still in ns.
  pcap_stamp_unit stamp_unit() const noexcept;
  // The longest a received frame stays invisible to next_batch() (the V3
  // block timeout; 0 in immediate mode). A drain at stop that waits this
  // long (plus scheduling slack) in next_batch() sees every frame the
  // kernel holds: undelivered() is then the frames it still could not read.
  uint32_t block_timeout_ms() const noexcept;
  // Frames the kernel accepted into this socket's ring (past the kernel
  // filter, not dropped for want of room) that next_batch() has not handed
  // out: ps_recv - ps_drop - delivered, read now. After the capture stops
  // and a drain, these are the frames lost at stop. It also counts what
  // libpcap discards in user space after the kernel counted it: the host's
  // own outgoing frames (the direction test is libpcap's, in user space;
  // none on a monitor port), and, with a filter, frames queued in the
  // microseconds before it was installed that it rejects. Exact where the
  // host sends nothing on the device (the live tests' and bench's veth).
  uint64_t undelivered() const noexcept;

 private:
  struct impl;
  explicit pcap_live_source(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace flower
