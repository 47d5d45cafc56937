// libFuzzer target for decode_packet. Input: byte 0 picks the link type,
// byte 1 bit 0 the tunnel option, the rest is the frame (caplen = wire_len,
// so ASan sees any read past caplen). The oracle checks what must hold for
// any input: a valid status, a key only on ok, an IP version, addresses that
// really occur in the frame, ports only where the rules allow them, the same
// status with tunnels off, and determinism.
//
//   cmake -DFLOWER_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ... && ninja fuzz_decode
//   ./fuzz_decode -max_total_time=60

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "pipeline/decode.h"

namespace {

using flower::decode_status;
using flower::link_type;

constexpr link_type kLinks[] = {link_type::ethernet, link_type::linux_sll, link_type::linux_sll2, link_type::raw,
                                link_type::ipv4,     link_type::ipv6,      link_type::null,       link_type::loop,
                                link_type::ppp,      link_type::nflog,     static_cast<link_type>(147)};

void check(bool ok) {
  if (!ok) std::abort();
}

bool occurs(const uint8_t* data, size_t n, const uint8_t* needle, size_t k) {
  return memmem(data, n, needle, k) != nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t size) {
  if (size < 2) return 0;
  // Copy into an exactly sized heap buffer: a read past caplen is an ASan error.
  std::vector<uint8_t> frame(in + 2, in + size);
  flower::packet_view v;
  v.data = frame.data();
  v.caplen = static_cast<uint32_t>(frame.size());
  v.wire_len = v.caplen + (in[1] >> 1);  // sometimes longer on the wire
  v.link = kLinks[in[0] % (sizeof kLinks / sizeof kLinks[0])];
  flower::decode_options opt;
  opt.decapsulate_tunnels = (in[1] & 1) == 0;

  flower::decoded_packet d;
  const decode_status s = flower::decode_packet(v, opt, d);
  check(static_cast<size_t>(s) < flower::kDecodeStatusCount);
  check(d.frame_bytes == v.wire_len);
  const flower::flow_key zero{};
  if (s != decode_status::ok) {
    check(d.key == zero);
    check(flower::category_of(s) != flower::status_category::none);
  } else {
    const flower::flow_key& k = d.key;
    check(k.ip_version == 4 || k.ip_version == 6);
    const size_t alen = k.ip_version == 4 ? 4 : 16;
    const size_t aoff = k.ip_version == 4 ? 12 : 0;
    check(occurs(frame.data(), frame.size(), k.addr_a.data() + aoff, alen));
    check(occurs(frame.data(), frame.size(), k.addr_b.data() + aoff, alen));
    if (k.port_a != 0 || k.port_b != 0) check(k.proto == 6 || k.proto == 17 || k.proto == 132);
    if (d.frag == flower::fragment_kind::later) check(k.port_a == 0 && k.port_b == 0);
    check(d.ip_bytes >= (k.ip_version == 4 ? 20u : 40u));
    if (d.tcp_flags != 0) check(k.proto == 6);
    if (!opt.decapsulate_tunnels) check(d.tunnel == flower::tunnel_kind::none && !d.has_outer_first_fragment);
    if (d.has_outer_first_fragment) check(d.tunnel != flower::tunnel_kind::none);
  }

  // Tunnels never change whether a frame decodes.
  flower::decode_options other = opt;
  other.decapsulate_tunnels = !opt.decapsulate_tunnels;
  flower::decoded_packet e;
  check(flower::decode_packet(v, other, e) == s);

  // Deterministic.
  flower::decoded_packet again;
  check(flower::decode_packet(v, opt, again) == s);
  check(again.key == d.key && again.ip_bytes == d.ip_bytes && again.frag == d.frag && again.spi == d.spi);
  return 0;
}
