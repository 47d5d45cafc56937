#pragma once
// live_source: the shape every live capture front end has, so the sensor's
// run loop is one template instantiated per front end (dispatch once, no
// virtual call per batch or packet).
//
//   template <live_source Source> void loop(Source& src) {
//     std::array<packet_view, 256> views;
//     while (!stop) {
//       size_t n = src.next_batch(views, 100);   // waits up to 100 ms
//       engine.process({views.data(), n}, out);  // views valid until release
//       src.release_batch();                     // frames go back to the kernel
//     }
//   }
//
// Packet times: libpcap gives every packet its kernel receive time. AF_XDP
// frames carry none of their own: the XDP front end stamps each with the
// driver's receive time from XDP metadata where the driver provides it
// (native mode, see capture/xdp_source.h), and otherwise the whole batch
// with ONE clock read (CLOCK_REALTIME, realtime_ns() below).

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <time.h>

#include "pipeline/packet.h"

namespace flower {

template <typename S>
concept live_source = requires(S& s, std::span<packet_view> out, int timeout_ms) {
  // Fills up to out.size() views, waiting up to timeout_ms when none are
  // ready; 0 on timeout or interruption (EINTR). Never throws.
  { s.next_batch(out, timeout_ms) } noexcept -> std::same_as<size_t>;
  // Gives the frames of the last batch back; views are invalid afterwards.
  { s.release_batch() } noexcept;
};

// Wall clock in ns since the Unix epoch: the one clock read per batch.
inline uint64_t realtime_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace flower
