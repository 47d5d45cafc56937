#pragma once
// xsk_queue: one AF_XDP socket bound to one RX queue, with its own UMEM.
// Not movable (libxdp keeps pointers to the ring structs): held by
// unique_ptr. Members are declared in construction order so destruction
// runs socket -> UMEM -> memory. create() throws std::system_error.

#include <xdp/xsk.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "capture/detail/unique_fd.h"
#include "capture/detail/xdp_meta.h"
#include "capture/xdp_source.h"
#include "pipeline/packet.h"

namespace flower::detail {

struct xsk_queue_options {
  std::string ifname;
  uint32_t queue_id = 0;
  uint32_t frames = 4096;
  uint32_t frame_size = 2048;
  bool zero_copy = false;   // XDP_ZEROCOPY, else XDP_COPY
  bool busy_poll = false;
  bool metadata = false;    // frames carry flower_xdp_meta (flower_xdp_hwts attached)
  int xsks_map_fd = -1;
};

class xsk_queue {
 public:
  static std::unique_ptr<xsk_queue> create(const xsk_queue_options& options);
  ~xsk_queue();
  xsk_queue(const xsk_queue&) = delete;
  xsk_queue& operator=(const xsk_queue&) = delete;

  // Peek up to out.size() received frames; they stay ours until released.
  size_t peek(std::span<packet_view> out, uint64_t ts_ns) noexcept;
  // Release every peeked RX descriptor and give its frame to the fill ring.
  void release() noexcept { release(held_count_); }
  // Release the n oldest peeked frames only (RX descriptors are consumed in
  // order), so a consumer may hold several batches at once.
  void release(uint32_t n) noexcept;
  // Kick the kernel if the fill ring asks for a wakeup (need_wakeup).
  void kick_if_needed() noexcept;
  // Frames the kernel has put in the RX ring that peek() has not taken yet
  // (producer minus our consumer position).
  uint32_t undelivered() const noexcept;
  // Remove this socket from the XSKMAP: from now on the program passes the
  // queue's frames to the kernel stack (XDP_PASS, counted no_socket) and
  // the RX ring only empties.
  void stop_intake() noexcept;

  int fd() const noexcept;
  uint32_t queue_id() const noexcept { return options_.queue_id; }
  bool zero_copy() const noexcept { return zero_copy_; }
  bool busy_poll() const noexcept { return busy_poll_; }
  xdp_socket_stats stats() const noexcept;

 private:
  explicit xsk_queue(const xsk_queue_options& options) : options_(options) {}
  void init();
  void take_timestamps(std::span<packet_view> views, uint64_t clock_ns) noexcept;

  xsk_queue_options options_;
  mapped_region area_;
  xsk_umem* umem_ = nullptr;
  xsk_ring_prod fill_{};
  xsk_ring_cons comp_{};
  xsk_socket* xsk_ = nullptr;
  xsk_ring_cons rx_{};
  // Frame addresses peeked but not released: a ring of `frames` slots (all
  // the UMEM has), oldest at held_head_.
  std::unique_ptr<uint64_t[]> held_;
  uint32_t held_head_ = 0;
  uint32_t held_count_ = 0;
  uint64_t rx_packets_ = 0;
  xdp_meta_counters meta_;  // flower_xdp_hwts metadata seen / used / unsynced
  bool zero_copy_ = false;
  bool busy_poll_ = false;
};

}  // namespace flower::detail
