#pragma once
// How far ahead the decoding loops (decode_batch, flow_table::update_frames)
// ask for the frames and views they will read, in one place so the two
// stay alike. Private to pipeline/.

#include <cstddef>
#include <cstdint>

#include "pipeline/packet.h"

namespace flower::detail {

// The decoder waits on the frame bytes coming from memory (a mapped file,
// a UMEM): headers are asked for this many frames ahead.
inline constexpr size_t kFramePrefetch = 16;
// The last header byte asked for: Ethernet + VLAN + IPv4/IPv6 + the TCP
// flags fit in 64 bytes, which a frame may spread over two cache lines.
inline constexpr size_t kFramePrefetchSpan = 63;
// The views may come from memory too (a source lending them), so they are
// fetched further ahead, or reading a frame's address would wait. Two
// packet_views share a cache line.
inline constexpr size_t kViewPrefetch = 64;

// Both lines a frame's headers may span. The address goes through an
// integer: an empty frame may have a null pointer, and a prefetch of any
// address is harmless, but null + 63 is not valid C++.
[[gnu::always_inline]] inline void prefetch_frame_headers(const packet_view& v) noexcept {
  const auto f = reinterpret_cast<uintptr_t>(v.data);
  __builtin_prefetch(reinterpret_cast<const void*>(f));
  __builtin_prefetch(reinterpret_cast<const void*>(f + kFramePrefetchSpan));
}

}  // namespace flower::detail
