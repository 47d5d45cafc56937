#include "capture/interface_info.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace flower {
namespace {

// Flags of /proc/net/route and /proc/net/ipv6_route (linux/route.h,
// linux/ipv6_route.h).
constexpr unsigned kRtfReject = 0x0200;

// A bridge on a bond on a NIC is two levels; a cycle cannot happen in the
// kernel's upper graph, but a bound keeps a broken sysfs from looping.
constexpr int kMaxUpperDepth = 4;

unsigned long hex(const std::string& text) noexcept {
  return std::strtoul(text.c_str(), nullptr, 16);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int prefix_length(const sockaddr* mask) {
  if (!mask) return -1;
  int bits = 0;
  if (mask->sa_family == AF_INET) {
    bits = std::popcount(reinterpret_cast<const sockaddr_in*>(mask)->sin_addr.s_addr);
  } else if (mask->sa_family == AF_INET6) {
    for (uint8_t b : reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr.s6_addr) bits += std::popcount(b);
  } else {
    return -1;
  }
  return bits;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i)
    out += (i == 0 ? "" : i + 1 == items.size() ? " and " : ", ") + items[i];
  return out;
}

void read_addresses(interface_facts& f) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return;
  for (const ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || !a->ifa_name || f.device != a->ifa_name) continue;
    char text[INET6_ADDRSTRLEN] = {};
    bool link_local = false;
    if (a->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof text);
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      const in6_addr& ip = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr)->sin6_addr;
      inet_ntop(AF_INET6, &ip, text, sizeof text);
      link_local = IN6_IS_ADDR_LINKLOCAL(&ip);
    } else {
      continue;
    }
    std::string entry = text;
    if (int bits = prefix_length(a->ifa_netmask); bits >= 0) entry += "/" + std::to_string(bits);
    (link_local ? f.link_local : f.addresses).push_back(entry);
  }
  freeifaddrs(list);
}

void read_facts(interface_facts& f, const std::string& proc_root, const std::string& sys_root, int depth) {
  read_addresses(f);
  const route_count v4 = count_ipv4_routes(read_file(proc_root + "/net/route"), f.device);
  const route_count v6 = count_ipv6_routes(read_file(proc_root + "/net/ipv6_route"), f.device);
  f.default_route = v4.default_route || v6.default_route;
  f.routes = v4.routes + v6.routes;
  if (depth >= kMaxUpperDepth) return;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(sys_root + "/class/net/" + f.device, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("upper_", 0) != 0) continue;
    interface_facts upper;
    upper.device = name.substr(6);
    read_facts(upper, proc_root, sys_root, depth + 1);
    if (upper.carries_host_traffic())  // "br0 (has address 10.0.0.5/24)"
      f.uppers.push_back(upper.device + " (" + upper.describe().substr(upper.device.size() + 1) + ")");
  }
}

}  // namespace

route_count count_ipv4_routes(const std::string& text, const std::string& device) {
  // Iface Destination Gateway Flags RefCnt Use Metric Mask ... (hex, header first)
  route_count c;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string iface, dest, gateway, flags, refcnt, use, metric, mask;
    if (!(fields >> iface >> dest >> gateway >> flags >> refcnt >> use >> metric >> mask)) continue;
    if (iface != device) continue;
    if (hex(flags) & kRtfReject) continue;
    if (hex(dest) == 0 && hex(mask) == 0) c.default_route = true;
    else ++c.routes;
  }
  return c;
}

route_count count_ipv6_routes(const std::string& text, const std::string& device) {
  // dest dest_len src src_len next_hop metric refcnt use flags device (hex, no header)
  route_count c;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string dest, dest_len, src, src_len, next_hop, metric, refcnt, use, flags, iface;
    if (!(fields >> dest >> dest_len >> src >> src_len >> next_hop >> metric >> refcnt >> use >> flags >> iface))
      continue;
    if (iface != device || dest.size() != 32) continue;
    if (hex(flags) & kRtfReject) continue;
    const unsigned first = static_cast<unsigned>(hex(dest.substr(0, 4)));
    if ((first & 0xffc0) == 0xfe80 || (first & 0xff00) == 0xff00) continue;  // link-local, multicast
    if (hex(dest_len) == 0) c.default_route = true;
    else ++c.routes;
  }
  return c;
}

interface_facts read_interface_facts(const std::string& device, const std::string& proc_root,
                                     const std::string& sys_root) {
  interface_facts f;
  f.device = device;
  read_facts(f, proc_root, sys_root, 0);
  return f;
}

std::string interface_facts::describe() const {
  std::vector<std::string> parts;
  if (!addresses.empty())
    parts.push_back(std::string(addresses.size() == 1 ? "has address " : "has addresses ") + join(addresses));
  const std::string n = std::to_string(routes) + (routes == 1 ? " route" : " routes");
  if (default_route) parts.push_back("carries the default route" + (routes ? " (and " + n + " more)" : std::string()));
  else if (routes != 0) parts.push_back("carries " + n);
  if (!uppers.empty()) parts.push_back("carries the traffic of " + join(uppers));
  if (!parts.empty()) return device + " " + join(parts);
  return device + " carries no traffic of this host (no address, no route" +
         (link_local.empty() ? std::string() : "; only IPv6 link-local " + join(link_local)) + ")";
}

host_traffic_choice choose_front_end_for_host(capture_request request, const interface_facts& facts,
                                  xdp_passthrough passthrough) {
  host_traffic_choice c;
  if (request == capture_request::pcap) {
    c.front_end = live_front_end::pcap;
    return c;
  }
  if (!facts.carries_host_traffic()) return c;  // xdp, nothing to say
  if (request == capture_request::auto_select) {
    c.front_end = live_front_end::pcap;
    c.message = facts.describe() +
                ": capturing with libpcap, which leaves the host's traffic alone (XDP would take the "
                "frames it redirects away from the host; --capture xdp forces it)";
    return c;
  }
  c.message = "--capture xdp: " + facts.describe() + "; frames redirected to the sensor never reach the host's stack";
  if (passthrough.prefilter || passthrough.sampling)
    c.message += std::string(" (the frames ") +
                 (passthrough.prefilter && passthrough.sampling ? "--xdp-proto/--xdp-ip-version and --sample leave out"
                  : passthrough.prefilter                       ? "--xdp-proto/--xdp-ip-version leave out"
                                                                : "--sample leaves out") +
                 " still do)";
  else
    c.message += ": the host cannot use this interface while the sensor runs";
  return c;
}

}  // namespace flower
