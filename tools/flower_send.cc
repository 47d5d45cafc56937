// flower-send: a deterministic test and benchmark traffic source. Writes
// hand-built Ethernet frames on an interface through a raw AF_PACKET socket
// (qdisc bypassed), for the live capture tests and bench/live-bench.
//
//   flower-send --iface veth1 --plan basic          # the known flow set below
//   flower-send --iface veth1 --blast --flows 8192 --size 64 --seconds 5 [--pps 500000]
//   flower-send --iface veth1 --blast --xdp-inject --seconds 5 [--pps 4000000]
//
// --xdp-inject sends through BPF_PROG_RUN live frames (tools/xdp_inject.h):
// several Mpps on one core instead of ~0.4 Mpps with AF_PACKET; on veth the
// peer needs an XDP program or GRO on (ethtool -K PEER gro on) to receive.
//
// Frames go to --dst-mac (default 02:00:00:77:00:01, a MAC nobody owns), so
// the receiving host's stack drops them silently (PACKET_OTHERHOST) and never
// answers: the capture sees exactly what was sent. Addresses are the test
// namespaces' own: 10.77.0.2 -> 10.77.0.1 and fd00:77::2 -> fd00:77::1.
//
// Plan "basic" (a = 10.77.0.2 / fd00:77::2 side, b = the .1 side):
//   UDP4 a:40001 -> b:53   5 x 32 B payload, and 3 x 100 B back
//   UDP4 a:40002 -> b:53   7 x 10 B payload, nothing back
//   TCP4 a:40003 -> b:80   SYN, SYN-ACK, ACK, 4 x 200 B, 2 x 1000 B back
//   UDP6 a:40004 -> b:53   4 x 48 B payload, and 2 x 64 B back
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifdef FLOWER_HAVE_XDP
#include <system_error>

#include "tools/xdp_inject.h"
#endif

namespace {

using frame = std::vector<uint8_t>;
using mac = std::array<uint8_t, 6>;

struct endpoint_pair {
  bool v6 = false;
  std::array<uint8_t, 16> a{}, b{};
};

void put16(uint8_t* p, uint16_t v) { p[0] = static_cast<uint8_t>(v >> 8); p[1] = static_cast<uint8_t>(v); }

uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}
uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc);
}

class frame_builder {
 public:
  frame_builder(mac src, mac dst) : src_(src), dst_(dst) {}

  // One IPv4/IPv6 frame carrying UDP (proto 17) or TCP (proto 6).
  frame build(const endpoint_pair& ep, bool from_a, uint8_t proto, uint16_t sport, uint16_t dport,
              size_t payload, uint8_t tcp_flags = 0) const {
    const size_t l4 = proto == 6 ? 20 : 8;
    const size_t l3 = ep.v6 ? 40 : 20;
    frame f(14 + l3 + l4 + payload, 0);
    std::memcpy(f.data(), dst_.data(), 6);
    std::memcpy(f.data() + 6, src_.data(), 6);
    put16(f.data() + 12, ep.v6 ? 0x86dd : 0x0800);
    uint8_t* ip = f.data() + 14;
    const uint8_t* s = from_a ? ep.a.data() : ep.b.data();
    const uint8_t* d = from_a ? ep.b.data() : ep.a.data();
    const size_t addr_len = ep.v6 ? 16 : 4;
    if (ep.v6) {
      ip[0] = 0x60;
      put16(ip + 4, static_cast<uint16_t>(l4 + payload));
      ip[6] = proto;
      ip[7] = 64;
      std::memcpy(ip + 8, s, 16);
      std::memcpy(ip + 24, d, 16);
    } else {
      ip[0] = 0x45;
      put16(ip + 2, static_cast<uint16_t>(l3 + l4 + payload));
      put16(ip + 4, id_++);
      ip[8] = 64;
      ip[9] = proto;
      std::memcpy(ip + 12, s, 4);
      std::memcpy(ip + 16, d, 4);
      put16(ip + 10, fold(sum16(ip, 20)));
    }
    uint8_t* t = ip + l3;
    put16(t, sport);
    put16(t + 2, dport);
    for (size_t i = 0; i < payload; ++i) t[l4 + i] = static_cast<uint8_t>(i);
    if (proto == 6) {
      t[12] = 5 << 4;
      t[13] = tcp_flags;
      put16(t + 14, 65535);
    } else {
      put16(t + 4, static_cast<uint16_t>(l4 + payload));
    }
    // Pseudo-header checksum (mandatory for UDP over IPv6, harmless elsewhere).
    uint32_t acc = sum16(s, addr_len) + sum16(d, addr_len) + proto + static_cast<uint32_t>(l4 + payload);
    uint16_t c = fold(sum16(t, l4 + payload, acc));
    if (proto == 17 && c == 0) c = 0xffff;
    put16(t + (proto == 6 ? 16 : 6), c);
    return f;
  }

 private:
  mac src_, dst_;
  mutable uint16_t id_ = 1;
};

std::vector<frame> basic_plan(const frame_builder& fb) {
  endpoint_pair v4;
  inet_pton(AF_INET, "10.77.0.2", v4.a.data());
  inet_pton(AF_INET, "10.77.0.1", v4.b.data());
  endpoint_pair v6;
  v6.v6 = true;
  inet_pton(AF_INET6, "fd00:77::2", v6.a.data());
  inet_pton(AF_INET6, "fd00:77::1", v6.b.data());
  std::vector<frame> out;
  // UDP4 40001 -> 53: f f r f r f r f
  for (char c : std::string("ffrfrfrf"))
    out.push_back(c == 'f' ? fb.build(v4, true, 17, 40001, 53, 32) : fb.build(v4, false, 17, 53, 40001, 100));
  for (int i = 0; i < 7; ++i) out.push_back(fb.build(v4, true, 17, 40002, 53, 10));
  // TCP4 40003 -> 80
  out.push_back(fb.build(v4, true, 6, 40003, 80, 0, 0x02));    // SYN
  out.push_back(fb.build(v4, false, 6, 80, 40003, 0, 0x12));   // SYN-ACK
  out.push_back(fb.build(v4, true, 6, 40003, 80, 0, 0x10));    // ACK
  for (int i = 0; i < 4; ++i) out.push_back(fb.build(v4, true, 6, 40003, 80, 200, 0x18));
  for (int i = 0; i < 2; ++i) out.push_back(fb.build(v4, false, 6, 80, 40003, 1000, 0x10));
  // UDP6 40004 -> 53: f r f r f f
  for (char c : std::string("frfrff"))
    out.push_back(c == 'f' ? fb.build(v6, true, 17, 40004, 53, 48) : fb.build(v6, false, 17, 53, 40004, 64));
  return out;
}

bool parse_mac(const char* s, mac& m) {
  unsigned v[6];
  if (std::sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return false;
  for (int i = 0; i < 6; ++i) m[static_cast<size_t>(i)] = static_cast<uint8_t>(v[i]);
  return true;
}

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "flower-send: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

// On stderr with exit 2 for bad arguments, on stdout with exit 0 for --help.
[[noreturn]] void usage(bool asked = false) {
  std::fprintf(asked ? stdout : stderr,
               "usage: flower-send --iface IF [--dst-mac MAC] (--plan basic | --blast [--flows N] [--size BYTES]\n"
               "                   [--seconds S] [--pps RATE] [--xdp-inject])\n"
               "Writes test frames on IF (10.77.0.2 -> 10.77.0.1, the test namespaces' own): --plan basic\n"
               "sends the live tests' fixed flow set; --blast sends UDP frames of --size bytes (default 64)\n"
               "over --flows flows (default 8192) for --seconds (default 5), at --pps (0 = as fast as it\n"
               "can), through AF_PACKET or, with --xdp-inject, BPF_PROG_RUN live frames.\n");
  std::exit(asked ? 0 : 2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string iface, plan;
  bool blast = false, xdp_inject = false;
  unsigned flows = 8192, size = 64;
  double seconds = 5, pps = 0;
  mac dst{0x02, 0x00, 0x00, 0x77, 0x00, 0x01};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { if (i + 1 >= argc) usage(); return argv[++i]; };
    if (a == "-h" || a == "--help") usage(true);
    else if (a == "--iface") iface = next();
    else if (a == "--plan") plan = next();
    else if (a == "--blast") blast = true;
    else if (a == "--xdp-inject") xdp_inject = true;
    else if (a == "--flows") flows = static_cast<unsigned>(std::strtoul(next(), nullptr, 10));
    else if (a == "--size") size = static_cast<unsigned>(std::strtoul(next(), nullptr, 10));
    else if (a == "--seconds") seconds = std::strtod(next(), nullptr);
    else if (a == "--pps") pps = std::strtod(next(), nullptr);
    else if (a == "--dst-mac") { if (!parse_mac(next(), dst)) usage(); }
    else usage();
  }
  if (iface.empty() || (plan.empty() == !blast) || (!plan.empty() && plan != "basic") || flows == 0 || size < 60) usage();

  int fd = socket(AF_PACKET, SOCK_RAW, 0);  // protocol 0: send only, never receives
  if (fd < 0) die("socket(AF_PACKET)");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, iface.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) die("SIOCGIFHWADDR " + iface);
  mac src;
  std::memcpy(src.data(), ifr.ifr_hwaddr.sa_data, 6);
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = static_cast<int>(if_nametoindex(iface.c_str()));
  sll.sll_halen = 6;
  std::memcpy(sll.sll_addr, dst.data(), 6);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) die("bind " + iface);

  frame_builder fb(src, dst);
  if (!plan.empty()) {
    const std::vector<frame> frames = basic_plan(fb);
    for (const frame& f : frames) {
      if (send(fd, f.data(), f.size(), 0) != static_cast<ssize_t>(f.size())) die("send");
      usleep(200);  // keep order across CPUs/queues deterministic
    }
    std::printf("sent %zu frames\n", frames.size());
    return 0;
  }

  // Blast: `flows` UDP flows (source ports vary), fixed frame size, sendmmsg batches.
  endpoint_pair v4;
  inet_pton(AF_INET, "10.77.0.2", v4.a.data());
  inet_pton(AF_INET, "10.77.0.1", v4.b.data());
  const size_t payload = size - 14 - 20 - 8;
  if (xdp_inject) {
#ifdef FLOWER_HAVE_XDP
    flower::xdp_inject_config cfg;
    cfg.ifname = iface;
    cfg.frame = fb.build(v4, true, 17, 10000, 5000, payload);
    cfg.flows = std::min(flows, 50000u);
    cfg.first_port = 10000;
    cfg.seconds = seconds;
    cfg.pps = pps;
    try {
      const flower::xdp_inject_result r = flower::xdp_inject_run(cfg);
      std::printf("sent %llu frames in %.2f s: %.3f Mpps (xdp-inject, %llu calls)\n",
                  static_cast<unsigned long long>(r.frames), r.seconds,
                  static_cast<double>(r.frames) / r.seconds / 1e6, static_cast<unsigned long long>(r.calls));
      return 0;
    } catch (const std::system_error& e) {
      std::fprintf(stderr, "flower-send: %s\n", e.what());
      return 1;
    }
#else
    std::fprintf(stderr, "flower-send: built without BPF support (FLOWER_BPF=OFF): no --xdp-inject\n");
    return 1;
#endif
  }
  std::vector<frame> frames;
  for (unsigned i = 0; i < flows; ++i)
    frames.push_back(fb.build(v4, true, 17, static_cast<uint16_t>(10000 + i % 50000),
                              static_cast<uint16_t>(5000 + i / 50000), payload));
  constexpr unsigned kBatch = 64;
  std::array<iovec, kBatch> iov{};
  std::array<mmsghdr, kBatch> msgs{};
  uint64_t sent = 0, errors = 0;
  size_t next = 0;
  const double start = now_s();
  double elapsed = 0;
  while ((elapsed = now_s() - start) < seconds) {
    if (pps > 0 && static_cast<double>(sent) > pps * elapsed) continue;  // pace
    for (unsigned i = 0; i < kBatch; ++i) {
      const frame& f = frames[next];
      next = next + 1 == frames.size() ? 0 : next + 1;
      iov[i] = {const_cast<uint8_t*>(f.data()), f.size()};
      msgs[i].msg_hdr = msghdr{};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = sendmmsg(fd, msgs.data(), kBatch, 0);
    if (n < 0) { ++errors; continue; }
    sent += static_cast<unsigned>(n);
  }
  std::printf("sent %llu frames in %.2f s: %.3f Mpps (%llu send errors)\n",
              static_cast<unsigned long long>(sent), elapsed, static_cast<double>(sent) / elapsed / 1e6,
              static_cast<unsigned long long>(errors));
  return 0;
}
