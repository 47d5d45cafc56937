#pragma once
// interface_info: does a network device carry this host's own traffic, and
// therefore which live front end may capture on it without cutting the host
// (and the operator's SSH session) off.
//
//   interface_facts f = read_interface_facts("eth0");
//   // f.describe(): "eth0 has addresses 10.0.0.5/24 and carries the default route"
//   host_traffic_choice c = choose_front_end_for_host(capture_request::auto_select, f, {});
//   if (!c.message.empty()) std::fprintf(stderr, "flower-sensor: %s\n", c.message.c_str());
//   if (c.front_end == live_front_end::xdp) ...
//
// Why it matters: AF_XDP redirects frames away from the kernel; they never
// reach the host's stack. On an interface the host talks through, an XDP
// sensor silently takes that traffic. libpcap gets a copy and leaves the
// stack alone. docs/live-capture.md has the policy.
//
// What counts as the host's traffic on DEV (read_interface_facts):
// - an IPv4 address, or an IPv6 address that is not link-local (fe80::/10);
// - a route out of DEV (/proc/net/route: IPv4 main table; /proc/net/ipv6_route:
//   every table), other than reject routes, link-local fe80::/10 and
//   multicast ff00::/8 routes;
// - any of that on a device stacked on DEV (bridge or bond master, VLAN,
//   macvlan: /sys/class/net/DEV/upper_*), whose frames arrive through DEV.
// IPv6 link-local addresses alone do not count: the kernel gives one to
// every IPv6-enabled interface, capture-only (SPAN, tap) ports included, so
// counting them would make XDP never the default; what they carry (NDP, a
// session to fe80::...%DEV) is rare as the operator's way in, and is named
// in the description so the operator can see it.

#include <cstdint>
#include <string>
#include <vector>

namespace flower {

struct interface_facts {
  std::string device;
  std::vector<std::string> addresses;  // "10.0.0.5/24", "2001:db8::5/64" (link-local excluded)
  std::vector<std::string> link_local; // IPv6 fe80::/10 addresses, reported only
  bool default_route = false;          // 0.0.0.0/0 or ::/0 leaves through it
  uint32_t routes = 0;                 // other routes through it (reject/link-local/multicast not counted)
  std::vector<std::string> uppers;     // stacked devices that carry host traffic, e.g. "br0 (master)"

  bool carries_host_traffic() const noexcept {
    return !addresses.empty() || default_route || routes != 0 || !uppers.empty();
  }
  // One line: "eth0 has addresses 10.0.0.5/24 and carries the default route",
  // "eth1 carries no traffic of this host (only IPv6 link-local fe80::1/64)".
  std::string describe() const;
};

// Reads getifaddrs(), /proc/net/route, /proc/net/ipv6_route and
// /sys/class/net/DEV/upper_*. Never throws for a missing file (facts stay
// empty); proc_root and sys_root are for tests.
interface_facts read_interface_facts(const std::string& device, const std::string& proc_root = "/proc",
                                     const std::string& sys_root = "/sys");

// Route counting on the /proc formats, exposed for tests: routes out of
// device in one file's text (the header line of /proc/net/route included).
struct route_count {
  bool default_route = false;
  uint32_t routes = 0;
};
route_count count_ipv4_routes(const std::string& proc_net_route, const std::string& device);
route_count count_ipv6_routes(const std::string& proc_net_ipv6_route, const std::string& device);

enum class capture_request : uint8_t { auto_select, xdp, pcap };
enum class live_front_end : uint8_t { xdp, pcap };

struct host_traffic_choice {
  live_front_end front_end = live_front_end::xdp;
  std::string message;  // one line for stderr, empty when there is nothing to say
};

// What the XDP program is set to leave to the host: with a pre-filter or
// sampling some frames still reach the stack (XDP_PASS).
struct xdp_passthrough {
  bool prefilter = false;  // --xdp-proto / --xdp-ip-version
  bool sampling = false;   // --sample N > 1
};

// The front-end policy, pure:
// - pcap requested: pcap, no message;
// - auto and the device carries host traffic: pcap, with why and how to
//   force XDP;
// - auto otherwise: xdp, no message;
// - xdp requested explicitly on a device carrying host traffic: xdp, with
//   what it does to the host's traffic (once);
// - xdp requested on a device without host traffic: xdp, no message.
host_traffic_choice choose_front_end_for_host(capture_request request, const interface_facts& facts,
                                  xdp_passthrough passthrough);

}  // namespace flower
