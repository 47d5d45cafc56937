#pragma once
// xdp_meta: reading the receive time flower_xdp_hwts leaves in the XDP
// metadata area in front of a frame (struct flower_xdp_meta,
// bpf/flower_xdp_shared.h). Header-only and free of sockets so the rules
// can be tested without a NIC that has a hardware clock.
//
//   xdp_meta_counters c;
//   view.ts_ns = xdp_meta_time(frame, room_before_frame, batch_clock_ns, c);

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "bpf/flower_xdp_shared.h"

namespace flower::detail {

struct xdp_meta_counters {
  uint64_t frames = 0;    // frames that carried our metadata
  uint64_t used = 0;      // ... whose driver time was taken
  uint64_t unsynced = 0;  // ... whose driver time was more than kMaxSkewNs off the clock
};

// A driver time further than this from the system clock read for the batch
// means the NIC clock is not disciplined to UTC: the clock read is used.
inline constexpr uint64_t kXdpMetaMaxSkewNs = 1'000'000'000;

// The time for the frame at `frame`, which has `room` bytes of its UMEM
// frame before it: the driver's receive time if flower_xdp_hwts left one
// that is non-zero and within kXdpMetaMaxSkewNs of `clock_ns`, else
// `clock_ns`. The magic is cleared, so a later, unstamped use of the same
// UMEM frame is never read as stamped.
inline uint64_t xdp_meta_time(uint8_t* frame, size_t room, uint64_t clock_ns, xdp_meta_counters& c) noexcept {
  if (room < sizeof(flower_xdp_meta)) return clock_ns;
  uint8_t* at = frame - sizeof(flower_xdp_meta);
  flower_xdp_meta m;
  std::memcpy(&m, at, sizeof m);
  if (m.magic != FLOWER_XDP_META_MAGIC) return clock_ns;
  const uint32_t cleared = 0;
  std::memcpy(at + offsetof(flower_xdp_meta, magic), &cleared, sizeof cleared);
  ++c.frames;
  if (m.rx_timestamp_ns == 0) return clock_ns;
  const uint64_t skew = m.rx_timestamp_ns > clock_ns ? m.rx_timestamp_ns - clock_ns : clock_ns - m.rx_timestamp_ns;
  if (skew > kXdpMetaMaxSkewNs) {
    ++c.unsynced;
    return clock_ns;
  }
  ++c.used;
  return m.rx_timestamp_ns;
}

}  // namespace flower::detail
