// The live front-end policy without root or a NIC: which front end is tried,
// how RX queues map to metering threads under each RSS answer, which options
// libpcap ignores, and how the options become the XDP configuration.
#include "sensor/front_end.h"

#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace flower {
namespace {

sensor_options with_capture(capture_mode mode, bool explicit_flag) {
  sensor_options o;
  o.device = "eth0";
  o.capture = mode;
  o.capture_explicit = explicit_flag;
  return o;
}

TEST(FrontEndChoice, DefaultTriesXdpOnAnInterfaceOnly) {
  const sensor_options o = with_capture(capture_mode::auto_select, false);
  front_end_choice c = choose_front_end(o, /*is_netdev=*/true, /*built_with_xdp=*/true);
  EXPECT_TRUE(c.try_xdp);
  EXPECT_FALSE(c.xdp_required);
  EXPECT_EQ(c.fallback_reason, "");
  c = choose_front_end(o, false, true);  // "any", "nflog:5", a typo
  EXPECT_FALSE(c.try_xdp);
  EXPECT_EQ(c.fallback_reason, "not a network interface");
}

TEST(FrontEndChoice, ExplicitXdpIsRequiredAndTriedEvenOnANonInterface) {
  const sensor_options o = with_capture(capture_mode::xdp, true);
  const front_end_choice c = choose_front_end(o, false, true);
  EXPECT_TRUE(c.try_xdp);
  EXPECT_TRUE(c.xdp_required);
}

TEST(FrontEndChoice, PcapNeverTriesXdp) {
  const front_end_choice c = choose_front_end(with_capture(capture_mode::pcap, true), true, true);
  EXPECT_FALSE(c.try_xdp);
  EXPECT_FALSE(c.xdp_required);
  EXPECT_EQ(c.fallback_reason, "");
}

TEST(FrontEndChoice, BuildWithoutXdpSaysSo) {
  front_end_choice c = choose_front_end(with_capture(capture_mode::auto_select, false), true, false);
  EXPECT_FALSE(c.try_xdp);
  EXPECT_EQ(c.fallback_reason, "built without XDP support");
  c = choose_front_end(with_capture(capture_mode::xdp, true), true, false);
  EXPECT_FALSE(c.try_xdp);
  EXPECT_TRUE(c.xdp_required);  // run_live refuses: nothing to fall back from
}

const rss_state kUnknown{false, false, "RSS key not reported"};
const rss_state kSymmetric{true, true, "RSS Toeplitz key repeats every 16 bits: symmetric"};
const rss_state kAsymmetric{true, false, "RSS key not symmetric"};

TEST(QueuePlan, OneQueueIsOneThreadWhateverTheHash) {
  for (const rss_state& rss : {kUnknown, kSymmetric, kAsymmetric}) {
    const queue_plan p = plan_queues("eth0", 1, rss, true, 8, 16);
    EXPECT_FALSE(p.per_queue);
    EXPECT_EQ(p.threads, 1u);
    EXPECT_EQ(p.line, "");
  }
}

TEST(QueuePlan, SymmetricRunsEachQueueToCompletion) {
  queue_plan p = plan_queues("eth1", 4, kSymmetric, false, 0, 16);
  EXPECT_TRUE(p.per_queue);
  EXPECT_EQ(p.threads, 4u);  // one per queue, up to the cores
  EXPECT_EQ(p.line, "eth1: RSS Toeplitz key repeats every 16 bits: symmetric; 4 queues run to completion on 4 threads");
  p = plan_queues("eth1", 4, kSymmetric, false, 0, 2);
  EXPECT_EQ(p.threads, 2u);  // cores bound it
  p = plan_queues("eth1", 4, kSymmetric, false, 8, 16);
  EXPECT_EQ(p.threads, 4u);  // never more threads than queues
  p = plan_queues("eth1", 4, kSymmetric, false, 1, 16);
  EXPECT_EQ(p.threads, 1u);
  EXPECT_NE(p.line.find("on 1 thread"), std::string::npos) << p.line;
}

TEST(QueuePlan, AsymmetricOrUnknownIsReshardedInSoftware) {
  for (const rss_state& rss : {kUnknown, kAsymmetric}) {
    queue_plan p = plan_queues("veth0", 2, rss, false, 0, 2);
    EXPECT_FALSE(p.per_queue);
    EXPECT_EQ(p.threads, 1u);  // two cores: one thread meters every queue
    EXPECT_EQ(p.line, "veth0: " + rss.note +
                          "; re-sharding in software: one thread meters all 2 queues, so both directions of a "
                          "flow still meet");
    p = plan_queues("veth0", 2, rss, false, 0, 8);
    EXPECT_EQ(p.threads, 7u);  // cores - 1 shards behind one reader
    p = plan_queues("veth0", 2, rss, false, 2, 8);
    EXPECT_FALSE(p.per_queue);
    EXPECT_EQ(p.threads, 2u);
    EXPECT_EQ(p.line, "veth0: " + rss.note +
                          "; re-sharding in software: one thread reads the 2 queues, flows are hashed onto 2 shards");
  }
}

TEST(QueuePlan, AssumingSymmetryAppliesOnlyToAnUnreportedHash) {
  queue_plan p = plan_queues("veth0", 2, kUnknown, true, 2, 2);
  EXPECT_TRUE(p.per_queue);
  EXPECT_EQ(p.threads, 2u);
  EXPECT_TRUE(p.rss.checked && p.rss.symmetric);
  EXPECT_EQ(p.line, "veth0: RSS assumed symmetric (--assume-symmetric-rss); 2 queues run to completion on 2 threads");
  // A hash the device reports as asymmetric is not overruled.
  p = plan_queues("eth0", 2, kAsymmetric, true, 2, 2);
  EXPECT_FALSE(p.per_queue);
  EXPECT_FALSE(p.rss.symmetric);
  EXPECT_EQ(p.rss.note, kAsymmetric.note);
}

TEST(ThreadPolicy, FileThreads) {
  EXPECT_EQ(file_threads(0, 1), 1u);
  EXPECT_EQ(file_threads(0, 2), 1u);  // a dispatcher plus one worker loses to one thread
  EXPECT_EQ(file_threads(0, 3), 2u);
  EXPECT_EQ(file_threads(0, 16), 15u);
  EXPECT_EQ(file_threads(0, 0), 1u);  // core count unknown
  EXPECT_EQ(file_threads(4, 2), 4u);  // --threads wins
}

TEST(PcapIgnoredOptions, EachXdpOnlyOptionIsNamedOnce) {
  sensor_options o;
  EXPECT_TRUE(pcap_ignored_options(o).empty());
  o.sample_rate = 1;  // 1 in 1 is every packet: nothing ignored
  EXPECT_TRUE(pcap_ignored_options(o).empty());
  o.sample_rate = 10;
  o.xdp_protocols = "udp";
  o.xdp_ip_version = 4;
  o.queues = {0, 1};
  const std::vector<std::string> lines = pcap_ignored_options(o);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].rfind("--sample applies to XDP only", 0), 0u);
  EXPECT_EQ(lines[1].rfind("--xdp-ip-version/--xdp-proto apply to XDP only", 0), 0u);
  EXPECT_EQ(lines[2].rfind("--queues applies to XDP only", 0), 0u);
}

#ifdef FLOWER_HAVE_XDP
TEST(XdpConfig, OptionsAreTranslated) {
  sensor_options o;
  o.device = "eth3";
  o.xdp_mode = xdp_attach_mode::generic;
  o.zero_copy = zero_copy_mode::off;
  o.queues = {2, 3};
  o.xdp_frames = 8192;
  o.xdp_frame_size = 4096;
  o.busy_poll = true;
  o.clock_timestamps = true;
  o.sample_rate = 100;
  o.xdp_ip_version = 6;
  o.xdp_protocols = "udp,132";
  const xdp_source_config c = xdp_config(o);
  EXPECT_EQ(c.device, "eth3");
  EXPECT_EQ(c.mode, xdp_mode_request::generic);
  EXPECT_EQ(c.zero_copy, zero_copy_request::off);
  EXPECT_EQ(c.queues, (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(c.frames, 8192u);
  EXPECT_EQ(c.frame_size, 4096u);
  EXPECT_TRUE(c.busy_poll);
  EXPECT_FALSE(c.hw_timestamps);
  EXPECT_EQ(c.prefilter.sample_rate, 100u);
  EXPECT_EQ(c.prefilter.ip_versions, FLOWER_XDP_IPV6);
  EXPECT_EQ(c.prefilter.match_protocols, 1);
  flower_xdp_config expected{};
  flower_xdp_config_add_protocol(&expected, 17);
  flower_xdp_config_add_protocol(&expected, 132);
  EXPECT_EQ(std::memcmp(c.prefilter.protocols, expected.protocols, sizeof expected.protocols), 0);
}

TEST(XdpConfig, DefaultsAskForTheBest) {
  sensor_options o;
  const xdp_source_config c = xdp_config(o);
  EXPECT_EQ(c.mode, xdp_mode_request::auto_select);
  EXPECT_EQ(c.zero_copy, zero_copy_request::auto_select);
  EXPECT_TRUE(c.hw_timestamps);
  EXPECT_TRUE(c.queues.empty());
}

TEST(XdpConfig, BadProtocolListThrows) {
  sensor_options o;
  o.xdp_protocols = "tcp,nope";
  EXPECT_THROW(xdp_config(o), std::invalid_argument);
}
#endif

}  // namespace
}  // namespace flower
