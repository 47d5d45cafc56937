// xdp_meta_time: the receive time flower_xdp_hwts leaves before a frame is
// taken only when it is ours (magic), non-zero and near the system clock;
// the magic is cleared so a reused UMEM frame is never read twice.

#include "capture/detail/xdp_meta.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>

namespace flower::detail {
namespace {

constexpr uint64_t kClock = 1'700'000'000'000'000'000ull;

// A UMEM frame: 256 bytes of headroom, then the packet.
struct frame {
  std::array<uint8_t, 512> bytes{};
  uint8_t* data() { return bytes.data() + 256; }
  void stamp(uint64_t ts, uint32_t magic = FLOWER_XDP_META_MAGIC) {
    flower_xdp_meta m{};
    m.rx_timestamp_ns = ts;
    m.magic = magic;
    std::memcpy(data() - sizeof m, &m, sizeof m);
  }
};

TEST(XdpMeta, DriverTimeNearTheClockIsTaken) {
  frame f;
  f.stamp(kClock - 12'345);
  xdp_meta_counters c;
  EXPECT_EQ(xdp_meta_time(f.data(), 256, kClock, c), kClock - 12'345);
  EXPECT_EQ(c.frames, 1u);
  EXPECT_EQ(c.used, 1u);
  EXPECT_EQ(c.unsynced, 0u);
}

TEST(XdpMeta, MagicIsClearedSoAReusedFrameIsNotReadAgain) {
  frame f;
  f.stamp(kClock + 1);
  xdp_meta_counters c;
  EXPECT_EQ(xdp_meta_time(f.data(), 256, kClock, c), kClock + 1);
  EXPECT_EQ(xdp_meta_time(f.data(), 256, kClock + 7, c), kClock + 7);  // same frame, not stamped again
  EXPECT_EQ(c.frames, 1u);
}

TEST(XdpMeta, ZeroMeansTheDriverGaveNone) {
  frame f;
  f.stamp(0);  // what veth answers
  xdp_meta_counters c;
  EXPECT_EQ(xdp_meta_time(f.data(), 256, kClock, c), kClock);
  EXPECT_EQ(c.frames, 1u);
  EXPECT_EQ(c.used, 0u);
}

TEST(XdpMeta, AClockFarFromTheSystemClockIsIgnoredAndCounted) {
  for (uint64_t ts : {kClock - kXdpMetaMaxSkewNs - 1, kClock + kXdpMetaMaxSkewNs + 1, uint64_t{123}}) {
    frame f;
    f.stamp(ts);
    xdp_meta_counters c;
    EXPECT_EQ(xdp_meta_time(f.data(), 256, kClock, c), kClock) << ts;
    EXPECT_EQ(c.unsynced, 1u) << ts;
    EXPECT_EQ(c.used, 0u) << ts;
  }
  frame edge;
  edge.stamp(kClock + kXdpMetaMaxSkewNs);
  xdp_meta_counters c;
  EXPECT_EQ(xdp_meta_time(edge.data(), 256, kClock, c), kClock + kXdpMetaMaxSkewNs);
}

TEST(XdpMeta, NotOursOrNoRoomUsesTheClock) {
  frame f;
  f.stamp(kClock - 5, 0xdeadbeef);
  xdp_meta_counters c;
  EXPECT_EQ(xdp_meta_time(f.data(), 256, kClock, c), kClock);
  frame g;
  g.stamp(kClock - 5);
  EXPECT_EQ(xdp_meta_time(g.data(), sizeof(flower_xdp_meta) - 1, kClock, c), kClock);  // would read before the frame
  EXPECT_EQ(c.frames, 0u);
}

}  // namespace
}  // namespace flower::detail
