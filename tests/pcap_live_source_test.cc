// pcap_live_source: time stamp units (no root), and, as root, live capture
// on a veth pair inside a network namespace of the test's own (unshare:
// the namespace and its links vanish with the test process).
#include "capture/pcap_live_source.h"

#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "capture/live_source.h"

namespace flower {
namespace {

TEST(PcapStamp, NanosecondFractionsAreTakenAsIs) {
  EXPECT_EQ(pcap_stamp_ns(1, 5, pcap_stamp_unit::nanoseconds), 1'000'000'005ull);
  EXPECT_EQ(pcap_stamp_ns(1'700'000'000, 999'999'999, pcap_stamp_unit::nanoseconds),
            1'700'000'000'999'999'999ull);
}

TEST(PcapStamp, MicrosecondFractionsAreScaled) {
  EXPECT_EQ(pcap_stamp_ns(1, 5, pcap_stamp_unit::microseconds), 1'000'005'000ull);
  EXPECT_EQ(pcap_stamp_ns(1'700'000'000, 999'999, pcap_stamp_unit::microseconds),
            1'700'000'000'999'999'000ull);
  EXPECT_EQ(pcap_stamp_ns(0, 0, pcap_stamp_unit::microseconds), 0u);
}

// ---- live, as root -----------------------------------------------------

constexpr const char* kCapture = "pcapt0";  // both ends live in the test's own namespace
constexpr const char* kSender = "pcapt1";

// A fresh network namespace with a quiet veth pair (no IPv6, so no DAD or
// router solicitations: the only frames are the test's). False: skip.
bool enter_private_netns(std::string& why) {
  if (geteuid() != 0) return why = "needs root", false;
  if (unshare(CLONE_NEWNET) != 0) return why = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno), false;
  const std::string cmd = std::string("sysctl -qw net.ipv6.conf.default.disable_ipv6=1 && ip link add ") + kCapture +
                          " type veth peer name " + kSender + " && ip link set " + kCapture + " up && ip link set " +
                          kSender + " up";
  if (std::system(cmd.c_str()) != 0) return why = "cannot create a veth pair (ip link)", false;
  return true;
}

// Raw frames out of the sender end, to a MAC nobody owns (nothing answers).
class frame_sender {
 public:
  frame_sender() {
    fd_ = socket(AF_PACKET, SOCK_RAW, 0);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = static_cast<int>(if_nametoindex(kSender));
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) ADD_FAILURE() << "sender socket";
    frame_.fill(0);
    const uint8_t dst[6] = {0x02, 0, 0, 0x77, 0, 0x01}, src[6] = {0x02, 0, 0, 0x77, 0, 0x02};
    std::memcpy(frame_.data(), dst, 6);
    std::memcpy(frame_.data() + 6, src, 6);
    frame_[12] = 0x88;  // IEEE local experimental EtherType: nothing in the stack handles it
    frame_[13] = 0xb5;
  }
  ~frame_sender() { if (fd_ >= 0) close(fd_); }
  frame_sender(const frame_sender&) = delete;
  frame_sender& operator=(const frame_sender&) = delete;
  void send(uint32_t seq) {
    std::memcpy(frame_.data() + 14, &seq, sizeof seq);
    ASSERT_EQ(::send(fd_, frame_.data(), frame_.size(), 0), static_cast<ssize_t>(frame_.size()));
  }

 private:
  int fd_ = -1;
  std::array<uint8_t, 64> frame_{};
};

pcap_live_source open_capture(bool nano = true) {
  pcap_live_config cfg;
  cfg.device = kCapture;
  cfg.nanosecond_stamps = nano;
  return pcap_live_source::open(cfg);
}

// Reads until `want` frames came or `limit` passed.
size_t read_frames(pcap_live_source& src, size_t want, std::vector<packet_view>& got,
                   std::chrono::milliseconds limit = std::chrono::milliseconds(2000)) {
  std::array<packet_view, 256> views;
  const auto end = std::chrono::steady_clock::now() + limit;
  while (got.size() < want && std::chrono::steady_clock::now() < end) {
    const size_t n = src.next_batch(std::span<packet_view>(views).first(std::min(views.size(), want - got.size())), 50);
    got.insert(got.end(), views.begin(), views.begin() + static_cast<ptrdiff_t>(n));
  }
  return got.size();
}

class PcapLive : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    std::string why;
    if (!enter_private_netns(why)) GTEST_SKIP() << why;
  }
};

// A frame's time lies between the clock read before it was sent and the one
// after it was read. Microsecond stamps read as nanoseconds would be up to a
// second early (only the whole seconds right): each of several frames, sent
// tens of ms apart, would miss the window with probability ~0.999.
TEST_P(PcapLive, StampsLieBetweenSendAndRead) {
  const bool nano = GetParam();
  pcap_live_source src = open_capture(nano);
  EXPECT_EQ(src.stamp_unit(), nano ? pcap_stamp_unit::nanoseconds : pcap_stamp_unit::microseconds) << src.warning();
  frame_sender tx;
  for (uint32_t i = 0; i < 5; ++i) {
    const uint64_t before = realtime_ns();
    tx.send(i);
    std::vector<packet_view> got;
    ASSERT_EQ(read_frames(src, 1, got), 1u) << "frame " << i;
    const uint64_t after = realtime_ns();
    const uint64_t slack_ns = nano ? 0 : 1000;  // a µs stamp is truncated
    EXPECT_GE(got[0].ts_ns + slack_ns, before) << "frame " << i;
    EXPECT_LE(got[0].ts_ns, after) << "frame " << i;
    if (!nano) {
      EXPECT_EQ(got[0].ts_ns % 1000, 0u);
    }
    src.release_batch();
    std::this_thread::sleep_for(std::chrono::milliseconds(37));
  }
}

INSTANTIATE_TEST_SUITE_P(Precision, PcapLive, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "nanoseconds" : "microseconds"; });

class PcapLiveDrain : public PcapLive {};

// next_batch(out, 0) never waits, frames sent are accounted as delivered or
// undelivered, and a drain that waits block_timeout_ms() gets them all.
TEST_F(PcapLiveDrain, UndeliveredIsWhatWasNotRead) {
  pcap_live_source src = open_capture();
  std::array<packet_view, 256> views;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(src.next_batch(views, 0), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(5));

  constexpr uint32_t kSent = 1000;
  frame_sender tx;
  for (uint32_t i = 0; i < kSent; ++i) tx.send(i);
  // The kernel counts a frame as it queues it (ps_recv); none are read yet.
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (src.stats().ps_recv < kSent && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(src.stats().ps_recv, kSent);
  EXPECT_EQ(src.stats().ps_drop, 0u);
  EXPECT_EQ(src.undelivered(), kSent);

  // Once the block is handed over, a zero-timeout call returns what is there at once.
  std::this_thread::sleep_for(std::chrono::milliseconds(src.block_timeout_ms() + 50));
  t0 = std::chrono::steady_clock::now();
  const size_t first = src.next_batch(std::span<packet_view>(views).first(100), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(5));
  EXPECT_EQ(first, 100u);
  EXPECT_EQ(src.undelivered(), kSent - 100);
  src.release_batch();

  // The drain: zero-timeout calls, then one wait of the block timeout.
  size_t drained = first;
  for (;;) {
    size_t n = src.next_batch(views, 0);
    if (n == 0) n = src.next_batch(views, static_cast<int>(src.block_timeout_ms()) + 50);
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) {
      uint32_t seq = 0;
      std::memcpy(&seq, views[i].data + 14, sizeof seq);
      EXPECT_EQ(seq, drained + i);  // in order, none twice
    }
    drained += n;
    src.release_batch();
  }
  EXPECT_EQ(drained, kSent);
  EXPECT_EQ(src.stats().delivered, kSent);
  EXPECT_EQ(src.undelivered(), 0u);
}

// The default ring keeps a burst that arrives while the reader is busy
// elsewhere: immediate mode's TPACKET_V2 slots held 1023 frames of 64 bytes
// here (64 MiB, snaplen 262144), so this burst of 20000 lost 95 %.
TEST_F(PcapLiveDrain, DefaultRingHoldsABurstWhileNobodyReads) {
  pcap_live_source src = open_capture();
  constexpr uint32_t kSent = 20000;
  frame_sender tx;
  for (uint32_t i = 0; i < kSent; ++i) tx.send(i);
  EXPECT_EQ(src.stats().ps_recv, kSent);
  EXPECT_EQ(src.stats().ps_drop, 0u);
  std::vector<packet_view> got;
  got.reserve(kSent);
  EXPECT_EQ(read_frames(src, kSent, got), kSent);
  EXPECT_EQ(src.undelivered(), 0u);
}

}  // namespace
}  // namespace flower
