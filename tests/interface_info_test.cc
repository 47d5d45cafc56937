// The front-end policy (capture/interface_info.h): an interface that carries
// this host's traffic is not handed to XDP by default; and the route counting
// on /proc/net/route and /proc/net/ipv6_route text.
#include "capture/interface_info.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace flower {
namespace {

interface_facts facts(std::vector<std::string> addresses, bool default_route = false, uint32_t routes = 0) {
  interface_facts f;
  f.device = "eth0";
  f.addresses = std::move(addresses);
  f.default_route = default_route;
  f.routes = routes;
  return f;
}

interface_facts quiet_port() {
  interface_facts f = facts({});
  f.link_local = {"fe80::1/64"};  // every IPv6-enabled interface has one
  return f;
}

TEST(FrontEndPolicy, AddressedInterfaceGetsPcapByDefaultWithTheReasonAndTheWayOut) {
  const host_traffic_choice c =
      choose_front_end_for_host(capture_request::auto_select, facts({"10.0.0.5/24"}, true), {});
  EXPECT_EQ(c.front_end, live_front_end::pcap);
  EXPECT_EQ(c.message,
            "eth0 has address 10.0.0.5/24 and carries the default route: capturing with libpcap, which leaves "
            "the host's traffic alone (XDP would take the frames it redirects away from the host; --capture xdp "
            "forces it)");
}

TEST(FrontEndPolicy, RouteAloneIsEnough) {
  // An unnumbered interface with a route through it still carries host traffic.
  EXPECT_EQ(choose_front_end_for_host(capture_request::auto_select, facts({}, false, 1), {}).front_end,
            live_front_end::pcap);
  EXPECT_EQ(choose_front_end_for_host(capture_request::auto_select, facts({}, true, 0), {}).front_end,
            live_front_end::pcap);
}

TEST(FrontEndPolicy, StackedDeviceCounts) {
  interface_facts f = facts({});
  f.uppers = {"br0 (has address 10.0.0.5/24)"};
  const host_traffic_choice c = choose_front_end_for_host(capture_request::auto_select, f, {});
  EXPECT_EQ(c.front_end, live_front_end::pcap);
  EXPECT_NE(c.message.find("eth0 carries the traffic of br0 (has address 10.0.0.5/24)"), std::string::npos)
      << c.message;
}

TEST(FrontEndPolicy, QuietInterfaceGetsXdpSilently) {
  const host_traffic_choice c = choose_front_end_for_host(capture_request::auto_select, quiet_port(), {});
  EXPECT_EQ(c.front_end, live_front_end::xdp);
  EXPECT_EQ(c.message, "");
  EXPECT_EQ(quiet_port().describe(),
            "eth0 carries no traffic of this host (no address, no route; only IPv6 link-local fe80::1/64)");
}

TEST(FrontEndPolicy, ExplicitXdpOnHostInterfaceSaysWhatItDoesOnce) {
  const host_traffic_choice c = choose_front_end_for_host(capture_request::xdp, facts({"10.0.0.5/24", "fd00::5/64"}), {});
  EXPECT_EQ(c.front_end, live_front_end::xdp);
  EXPECT_EQ(c.message,
            "--capture xdp: eth0 has addresses 10.0.0.5/24 and fd00::5/64; frames redirected to the sensor never "
            "reach the host's stack: the host cannot use this interface while the sensor runs");
}

TEST(FrontEndPolicy, ExplicitXdpWithPrefilterSaysTheRestStillReachesTheHost) {
  const interface_facts f = facts({"10.0.0.5/24"});
  const host_traffic_choice proto = choose_front_end_for_host(capture_request::xdp, f, {.prefilter = true});
  EXPECT_EQ(proto.front_end, live_front_end::xdp);
  EXPECT_NE(proto.message.find("(the frames --xdp-proto/--xdp-ip-version leave out still do)"), std::string::npos)
      << proto.message;
  const host_traffic_choice sample = choose_front_end_for_host(capture_request::xdp, f, {.sampling = true});
  EXPECT_NE(sample.message.find("(the frames --sample leaves out still do)"), std::string::npos) << sample.message;
  const host_traffic_choice both = choose_front_end_for_host(capture_request::xdp, f, {.prefilter = true, .sampling = true});
  EXPECT_NE(both.message.find("--xdp-proto/--xdp-ip-version and --sample leave out"), std::string::npos);
}

TEST(FrontEndPolicy, ExplicitXdpOnQuietInterfaceSaysNothing) {
  const host_traffic_choice c = choose_front_end_for_host(capture_request::xdp, quiet_port(), {});
  EXPECT_EQ(c.front_end, live_front_end::xdp);
  EXPECT_EQ(c.message, "");
}

TEST(FrontEndPolicy, PcapRequestedIsPcapWhateverTheInterface) {
  for (const interface_facts& f : {facts({"10.0.0.5/24"}, true), quiet_port()}) {
    const host_traffic_choice c = choose_front_end_for_host(capture_request::pcap, f, {});
    EXPECT_EQ(c.front_end, live_front_end::pcap);
    EXPECT_EQ(c.message, "");
  }
}

TEST(InterfaceFacts, DescribeCountsRoutes) {
  EXPECT_EQ(facts({}, true, 2).describe(), "eth0 carries the default route (and 2 routes more)");
  EXPECT_EQ(facts({}, false, 1).describe(), "eth0 carries 1 route");
}

// Text as the kernel writes it (this machine's, trimmed).
constexpr const char* kRoute =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "eth1\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "eth2\t00004E0A\t00000000\t0201\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";  // reject

constexpr const char* kIpv6Route =
    "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
    "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0\n"
    "ff000000000000000000000000000000 08 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000003 00000000 00000001     eth0\n"
    "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth1\n"
    "ff000000000000000000000000000000 08 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000003 00000000 00000001     eth1\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";

TEST(InterfaceFacts, Ipv4RoutesSkipOtherDevicesAndRejectRoutes) {
  const route_count eth0 = count_ipv4_routes(kRoute, "eth0");
  EXPECT_TRUE(eth0.default_route);
  EXPECT_EQ(eth0.routes, 1u);
  const route_count eth1 = count_ipv4_routes(kRoute, "eth1");
  EXPECT_FALSE(eth1.default_route);
  EXPECT_EQ(eth1.routes, 1u);
  EXPECT_EQ(count_ipv4_routes(kRoute, "eth2").routes, 0u);
  EXPECT_EQ(count_ipv4_routes(kRoute, "eth").routes, 0u);  // whole names only
}

TEST(InterfaceFacts, Ipv6RoutesSkipLinkLocalMulticastAndReject) {
  const route_count eth0 = count_ipv6_routes(kIpv6Route, "eth0");
  EXPECT_TRUE(eth0.default_route);
  EXPECT_EQ(eth0.routes, 1u);  // fd00::/64; not fe80::/64, not ff00::/8
  const route_count eth1 = count_ipv6_routes(kIpv6Route, "eth1");
  EXPECT_FALSE(eth1.default_route);
  EXPECT_EQ(eth1.routes, 0u);  // link-local and multicast only: a quiet port
  EXPECT_FALSE(count_ipv6_routes(kIpv6Route, "lo").default_route);  // the unreachable default
}

TEST(InterfaceFacts, ReadsProcAndSysUnderInjectedRoots) {
  // No addresses for a made-up device name; routes and uppers come from
  // the injected files: an upper with a route makes the port count.
  const std::filesystem::path root = std::filesystem::temp_directory_path() / ("flower-ifinfo-" + std::to_string(::getpid()));
  std::filesystem::create_directories(root / "proc/net");
  std::filesystem::create_directories(root / "sys/class/net/flvtest0");
  std::filesystem::create_directories(root / "sys/class/net/flvtestbr");
  std::filesystem::create_directories(root / "sys/class/net/flvtest0/upper_flvtestbr");
  std::ofstream(root / "proc/net/route")
      << "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
         "flvtestbr\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
  std::ofstream(root / "proc/net/ipv6_route") << "";
  const interface_facts port = read_interface_facts("flvtest0", (root / "proc").string(), (root / "sys").string());
  EXPECT_TRUE(port.carries_host_traffic());
  EXPECT_EQ(port.describe(), "flvtest0 carries the traffic of flvtestbr (carries 1 route)");
  std::filesystem::remove(root / "proc/net/route");
  const interface_facts bare = read_interface_facts("flvtest0", (root / "proc").string(), (root / "sys").string());
  EXPECT_FALSE(bare.carries_host_traffic()) << bare.describe();
  std::filesystem::remove_all(root);
}

TEST(InterfaceFacts, LoopbackOfThisMachineCarriesHostTraffic) {
  const interface_facts lo = read_interface_facts("lo");
  EXPECT_TRUE(lo.carries_host_traffic()) << lo.describe();
  EXPECT_NE(lo.describe().find("127.0.0.1/8"), std::string::npos) << lo.describe();
}

}  // namespace
}  // namespace flower
