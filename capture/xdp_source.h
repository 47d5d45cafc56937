#pragma once
// xdp_source: AF_XDP live capture. Attaches bpf/flower_xdp to a device, binds
// one AF_XDP socket (with its own UMEM) per RX queue and hands out frames as
// packet_views straight from the UMEM, one batch at a time.
//
//   xdp_source_config cfg{.device = "eth0"};
//   xdp_source src = xdp_source::open(cfg);        // throws std::system_error
//   size_t n = src.next_batch(views, 100);          // live_source
//   engine.process({views.data(), n}, out);
//   src.release_batch();                            // frames refill the fill ring
//
// Multi-core: split() the queues into one group per worker thread; each
// group is a parallel_engine Source of its own:
//   std::vector<xdp_queue_group> groups = src.split(workers);     // hold 1
//   engine.run_per_queue(std::span(groups));                      // RSS symmetric
//   std::vector<xdp_queue_group> one = src.split(1, kMaxBatchesInFlight + 1);
//   engine.run(one[0]);                                           // software re-shard
// A group's views stay valid until `hold` more next_batch() calls were made
// (each call first gives back the batch `hold` calls old): 1 is how long a
// run-to-completion worker reads them, kMaxBatchesInFlight + 1 what
// parallel_engine::run needs. Do not mix split() groups and the source's own
// next_batch().
//
// Modes: native XDP, else generic (skb) when mode is auto_select; zero-copy,
// else copy when zero_copy is auto_select. What was obtained is in info().
// Timestamps: the driver's receive time per frame via XDP metadata when the
// device-bound program attaches (hw_timestamps), else one CLOCK_REALTIME read
// per batch.
// Teardown (destructor) runs in reverse: sockets, UMEMs, then the program is
// detached and its pins removed. A program left behind by a killed sensor
// is recognised by name (FLOWER_XDP_PROG_NAME) and replaced; any other XDP
// program on the device makes open() refuse. Hold the device's
// interface_lock (capture/interface_lock.h) before open(): only then is a
// flower_xdp found on the device a dead sensor's, not a running one's.

#include <poll.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bpf/flower_xdp_shared.h"
#include "pipeline/packet.h"

namespace flower {

namespace detail {
class xsk_queue;
}

enum class xdp_mode_request : uint8_t { auto_select, native, generic };
enum class zero_copy_request : uint8_t { auto_select, on, off };

struct xdp_source_config {
  std::string device;
  xdp_mode_request mode = xdp_mode_request::auto_select;
  zero_copy_request zero_copy = zero_copy_request::auto_select;
  std::vector<uint32_t> queues;  // empty: every RX queue of the device
  uint32_t frames = 4096;        // UMEM frames per queue (power of two)
  uint32_t frame_size = 2048;    // 2048 or 4096
  bool busy_poll = false;        // SO_PREFER_BUSY_POLL + SO_BUSY_POLL
  bool hw_timestamps = true;     // try the driver's receive time (XDP metadata, native mode)
  flower_xdp_config prefilter{}; // IP version / protocol / sampling in XDP
};

struct xdp_queue_info {
  uint32_t queue_id = 0;
  bool zero_copy = false;
  bool busy_poll = false;
};

struct xdp_source_info {
  bool native = false;              // native driver mode, else generic (skb)
  bool dispatcher = false;          // attached through libxdp's dispatcher
  bool replaced_stale = false;      // a leftover flower_xdp was detached first
  bool hw_timestamps = false;       // flower_xdp_hwts attached: driver receive time per frame when it has one
  std::string notes;                // one line per fallback taken
  std::vector<xdp_queue_info> queues;
};

struct xdp_socket_stats {
  uint32_t queue_id = 0;
  bool zero_copy = false;
  uint64_t rx_packets = 0;
  uint64_t metadata_frames = 0;         // frames stamped by flower_xdp_hwts
  uint64_t hw_timestamps = 0;           // ... whose driver receive time was used
  uint64_t hw_timestamps_unsynced = 0;  // ... ignored: > 1 s off the system clock
  uint64_t rx_dropped = 0;
  uint64_t rx_invalid_descs = 0;
  uint64_t rx_ring_full = 0;
  uint64_t fill_ring_empty_descs = 0;
};

// Some of an xdp_source's queues, read by one thread (see above). Valid
// while the xdp_source that made it lives. Cache-line aligned: groups sit
// side by side in split()'s vector, each written by its own thread.
class alignas(64) xdp_queue_group {
 public:
  static constexpr uint32_t kMaxHold = 16;

  // Gives back the batch `hold` calls old, then peeks the group's queues
  // round-robin (one queue per batch). When idle, waits in poll() for up to
  // ~1 ms; 0 means nothing arrived.
  size_t next_batch(std::span<packet_view> out) noexcept;
  void release_batch() noexcept;  // give every held batch back (e.g. at stop)
  const std::vector<uint32_t>& queue_ids() const noexcept { return ids_; }
  // At stop (see xdp_source): the group's queues only.
  void stop_intake() noexcept;
  uint64_t undelivered() const noexcept;

 private:
  friend class xdp_source;
  struct held_batch {
    uint32_t queue = 0;  // index into queues_
    uint32_t frames = 0;
  };
  std::vector<detail::xsk_queue*> queues_;
  std::vector<pollfd> fds_;
  std::vector<uint32_t> ids_;
  size_t next_ = 0;
  unsigned empty_polls_ = 0;
  uint32_t hold_ = 1;
  held_batch held_[kMaxHold];  // FIFO of batches not yet given back
  uint32_t held_head_ = 0;
  uint32_t held_n_ = 0;
};

class xdp_source {
 public:
  static xdp_source open(const xdp_source_config& config);

  xdp_source(xdp_source&&) noexcept;
  xdp_source& operator=(xdp_source&&) noexcept;
  ~xdp_source();

  size_t next_batch(std::span<packet_view> out, int timeout_ms) noexcept;
  void release_batch() noexcept;

  // Stopping without losing count: stop_intake() takes the sockets out of
  // the XSKMAP, so new frames go to the kernel stack (program counter
  // no_socket) instead of the RX rings; the caller then reads with timeout
  // 0 until the rings are empty or its deadline passes, and undelivered()
  // is what is left in the RX rings (frames the program redirected that
  // were never read). Program redirected == frames read + socket drops
  // (rx_dropped + rx_ring_full) + undelivered().
  void stop_intake() noexcept;
  uint64_t undelivered() const noexcept;

  // Queue i goes to group i % groups (groups is clamped to [1, queues]);
  // hold (1..kMaxHold) as above.
  std::vector<xdp_queue_group> split(size_t groups, uint32_t hold = 1);
  size_t queue_count() const noexcept;

  const xdp_source_info& info() const noexcept;
  std::vector<xdp_socket_stats> socket_stats() const;
  std::vector<flower_xdp_counters> program_counters() const;  // one per possible CPU

 private:
  struct impl;
  explicit xdp_source(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// Number of RX queues (the rx-N entries of /sys/class/net/DEV/queues), 1
// if unknown.
uint32_t device_rx_queues(const std::string& device);

// Throws std::invalid_argument naming the problem when a requested queue id
// does not exist on the device or is given twice (empty = all: fine).
void validate_queues(const std::string& device, const std::vector<uint32_t>& queues);

struct rss_report {
  bool checked = false;    // the device has >1 queue and reported its key
  bool symmetric = false;  // both directions of a flow hash to one queue
  std::string note;
};
// ETHTOOL_GRSSH: symmetric when the hash input is symmetric-xor or the
// Toeplitz key repeats with a 16-bit period.
rss_report check_rss_symmetry(const std::string& device);

// ETHTOOL_SRSSH: replace the Toeplitz key by 6d:5a repeated (the indirection
// table is left alone), which makes the hash symmetric. Returns "" on
// success, else why it could not (e.g. "Operation not supported").
std::string set_rss_symmetric_key(const std::string& device);

}  // namespace flower
