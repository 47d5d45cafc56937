// decode_packet, specified by hand-built frames: one case per rule of
// docs/decoding.md, plus truncation sweeps that cut every frame at every byte.

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pipeline/decode.h"
#include "tests/packet_builder.h"

namespace flower {
namespace {

using test::frame;
using test::ipv4_options;
using test::packet_builder;

std::string text(const std::array<uint8_t, 16>& a, uint8_t version) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (version == 4) {
    inet_ntop(AF_INET, a.data() + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, a.data(), buf, sizeof buf);
  }
  return buf;
}

// "proto a:port > b:port vlan" — the key as one readable string.
std::string key_of(const decoded_packet& d) {
  return std::to_string(d.key.proto) + " " + text(d.key.addr_a, d.key.ip_version) + ":" +
         std::to_string(d.key.port_a) + " > " + text(d.key.addr_b, d.key.ip_version) + ":" +
         std::to_string(d.key.port_b) + " vlan " + std::to_string(d.key.vlan);
}

decode_status decode(const frame& f, decoded_packet& d, bool tunnels = true) {
  decode_options o;
  o.decapsulate_tunnels = tunnels;
  return decode_packet(f.view(), o, d);
}

// Decodes and requires ok; returns the key text.
std::string ok_key(const frame& f, decoded_packet* out = nullptr, bool tunnels = true) {
  decoded_packet d;
  decode_status s = decode(f, d, tunnels);
  EXPECT_EQ(s, decode_status::ok) << name_of(s);
  if (out) *out = d;
  return key_of(d);
}

decode_status status_of(const frame& f) {
  decoded_packet d;
  return decode(f, d);
}

const char* kInner = "6 192.168.0.1:40000 > 192.168.0.2:443 vlan 0";
packet_builder& inner_tcp(packet_builder& b) { return b.ipv4("192.168.0.1", "192.168.0.2", 6).tcp(40000, 443); }

frame tcp4_frame() {
  return packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 6).tcp(1234, 80, test::tcp_syn).build();
}

// ---------------------------------------------------------------- basics

TEST(DecodeBasics, EthernetIpv4TcpGivesWireOrderKeyLengthsAndFlags) {
  frame f = tcp4_frame();
  decoded_packet d;
  EXPECT_EQ(ok_key(f, &d), "6 10.0.0.1:1234 > 10.0.0.2:80 vlan 0");
  EXPECT_EQ(d.key.ip_version, 4);
  EXPECT_EQ(d.ip_bytes, 40u);
  EXPECT_EQ(d.frame_bytes, 54u);
  EXPECT_EQ(d.tcp_flags, test::tcp_syn);
  EXPECT_EQ(d.frag, fragment_kind::none);
  EXPECT_EQ(d.tunnel, tunnel_kind::none);
  EXPECT_FALSE(d.has_outer_first_fragment);
  EXPECT_EQ(d.ts_ns, 1'000'000'000u);
}

TEST(DecodeBasics, Ipv4AddressesAreStoredIpv4Mapped) {
  decoded_packet d;
  ok_key(tcp4_frame(), &d);
  const std::array<uint8_t, 16> mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
  EXPECT_EQ(d.key.addr_a, mapped);
}

TEST(DecodeBasics, FrameBytesIsTheWireLengthNotTheCaptureLength) {
  frame f = packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 17).udp(5, 53).payload(200).build();
  decoded_packet d;
  ASSERT_EQ(decode_packet(f.view(60), {}, d), decode_status::ok);
  EXPECT_EQ(d.frame_bytes, f.size());
  EXPECT_EQ(d.ip_bytes, f.size() - 14);
  EXPECT_EQ(key_of(d), "17 10.0.0.1:5 > 10.0.0.2:53 vlan 0");
}

TEST(DecodeBasics, IpBytesIsTheDeclaredLengthEvenWhenBogus) {
  ipv4_options o;
  o.total_length = 9000;
  frame f = packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 17, o).udp(5, 53).build();
  decoded_packet d;
  EXPECT_EQ(ok_key(f, &d), "17 10.0.0.1:5 > 10.0.0.2:53 vlan 0");
  EXPECT_EQ(d.ip_bytes, 9000u);
}

TEST(DecodeBasics, Ipv4TotalLengthZeroIsTsoAndUsesTheWireLength) {
  ipv4_options o;
  o.total_length = 0;
  frame f = packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 6, o).tcp(1, 2).payload(100).build();
  decoded_packet d;
  ASSERT_EQ(decode_packet(f.view(), {}, d), decode_status::ok);
  EXPECT_EQ(d.ip_bytes, f.size() - 14);
  EXPECT_EQ(d.key.port_b, 2);
}

TEST(DecodeBasics, Ipv4TotalLengthBelowHeaderLengthIsMalformed) {
  ipv4_options o;
  o.total_length = 12;
  frame f = packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 6, o).tcp(1, 2).build();
  EXPECT_EQ(status_of(f), decode_status::bad_ipv4_length);
  EXPECT_EQ(category_of(decode_status::bad_ipv4_length), status_category::malformed);
}

TEST(DecodeBasics, Ipv6UdpAndIpBytesIsPayloadLengthPlus40) {
  frame f = packet_builder{}.eth(0x86dd).ipv6("2001:db8::1", "2001:db8::2", 17).udp(5353, 53).payload(10).build();
  decoded_packet d;
  EXPECT_EQ(ok_key(f, &d), "17 2001:db8::1:5353 > 2001:db8::2:53 vlan 0");
  EXPECT_EQ(d.key.ip_version, 6);
  EXPECT_EQ(d.ip_bytes, 40u + 8u + 10u);
}

TEST(DecodeBasics, SctpHasPorts) {
  frame f = packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 132).sctp(2905, 2906).build();
  EXPECT_EQ(ok_key(f), "132 10.0.0.1:2905 > 10.0.0.2:2906 vlan 0");
}

TEST(DecodeBasics, IcmpHasNoPortsButTypeAndCode) {
  frame f = packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 1).icmp(8, 0).build();
  decoded_packet d;
  EXPECT_EQ(ok_key(f, &d), "1 10.0.0.1:0 > 10.0.0.2:0 vlan 0");
  EXPECT_EQ(d.icmp_type_code, 0x0800);
}

TEST(DecodeBasics, Icmpv6TypeAndCode) {
  frame f = packet_builder{}.eth(0x86dd).ipv6("fe80::1", "ff02::1", 58).icmp(135, 0).build();
  decoded_packet d;
  EXPECT_EQ(ok_key(f, &d), "58 fe80::1:0 > ff02::1:0 vlan 0");
  EXPECT_EQ(d.icmp_type_code, 135 << 8);
}

TEST(DecodeBasics, EspAndAhReportTheSpiAndKeepTheirProtocol) {
  decoded_packet d;
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 50).esp(0xabcdef01).build(), &d),
            "50 10.0.0.1:0 > 10.0.0.2:0 vlan 0");
  EXPECT_EQ(d.spi, 0xabcdef01u);
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x86dd).ipv6("::1", "::2", 51).ah(17, 0x100).udp(1, 2).build(), &d),
            "51 ::1:0 > ::2:0 vlan 0");
  EXPECT_EQ(d.spi, 0x100u);
}

TEST(DecodeBasics, IcmpErrorQuotingUdpStaysIcmp) {
  frame f = packet_builder{}
                .eth(0x0800)
                .ipv4("192.168.1.1", "10.0.0.1", 1)
                .icmp(3, 3)
                .ipv4("10.0.0.1", "8.8.8.8", 17)
                .udp(5000, 53)
                .build();
  decoded_packet d;
  EXPECT_EQ(ok_key(f, &d), "1 192.168.1.1:0 > 10.0.0.1:0 vlan 0");
  EXPECT_EQ(d.icmp_type_code, 0x0303);
  EXPECT_EQ(d.tunnel, tunnel_kind::none);
}

TEST(DecodeBasics, OtherProtocolsHaveNoPorts) {
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "224.0.0.5", 89).payload(40).build()),
            "89 10.0.0.1:0 > 224.0.0.5:0 vlan 0");
}

TEST(DecodeBasics, TransportHeaderCutByCaplenGivesPortsZeroButOk) {
  frame f = tcp4_frame();
  decoded_packet d;
  ASSERT_EQ(decode_packet(f.view(14 + 20 + 3), {}, d), decode_status::ok);
  EXPECT_EQ(key_of(d), "6 10.0.0.1:0 > 10.0.0.2:0 vlan 0");
  ASSERT_EQ(decode_packet(f.view(14 + 20 + 4), {}, d), decode_status::ok);
  EXPECT_EQ(key_of(d), "6 10.0.0.1:1234 > 10.0.0.2:80 vlan 0");
  EXPECT_EQ(d.tcp_flags, 0);  // flags byte not captured
  frame u = packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 17).udp(5, 53).build();
  ASSERT_EQ(decode_packet(u.view(14 + 20 + 7), {}, d), decode_status::ok);
  EXPECT_EQ(d.key.port_a, 0);  // UDP needs its whole 8-byte header
}

TEST(DecodeBasics, DeclaredLengthBoundsTheTransportHeader) {
  ipv4_options o;
  o.total_length = 22;  // header + 2 bytes: the ports are not inside the datagram
  frame f = packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 6, o).tcp(1, 2).build();
  decoded_packet d;
  EXPECT_EQ(ok_key(f, &d), "6 10.0.0.1:0 > 10.0.0.2:0 vlan 0");
}

// ---------------------------------------------------------------- link types

struct link_case {
  const char* name;
  frame f;
  decode_status status;
  const char* key;  // when ok
};

std::vector<link_case> link_cases() {
  auto ip4 = [](packet_builder b) { return b.ipv4("10.1.1.1", "10.2.2.2", 17).udp(1000, 2000).build(); };
  auto ip6 = [](packet_builder b) { return b.ipv6("2001:db8::a", "2001:db8::b", 6).tcp(1000, 443).build(); };
  const char* k4 = "17 10.1.1.1:1000 > 10.2.2.2:2000 vlan 0";
  const char* k6 = "6 2001:db8::a:1000 > 2001:db8::b:443 vlan 0";
  return {
      {"sll_ipv4", ip4(packet_builder{}.sll(0x0800)), decode_status::ok, k4},
      {"sll_ipv6", ip6(packet_builder{}.sll(0x86dd)), decode_status::ok, k6},
      {"sll_arp", packet_builder{}.sll(0x0806).payload(28).build(), decode_status::non_ip, nullptr},
      {"sll_netlink", packet_builder{}.sll(0x0000, 824).payload(20).build(), decode_status::non_ip, nullptr},
      {"sll2_ipv4", ip4(packet_builder{}.sll2(0x0800)), decode_status::ok, k4},
      {"sll2_netlink", ip4(packet_builder{}.sll2(0x0800, 824)), decode_status::non_ip, nullptr},
      {"sll2_vlan", ip4(packet_builder{}.sll2(0x8100).vlan(0, 0x0800)), decode_status::ok, k4},
      {"raw_ipv4", ip4(packet_builder{}.raw()), decode_status::ok, k4},
      {"raw_ipv6", ip6(packet_builder{}.raw()), decode_status::ok, k6},
      {"raw_bad_version", packet_builder{}.raw().bytes({0x50, 0, 0, 20}).payload(16).build(),
       decode_status::bad_ip_version, nullptr},
      {"dlt_ipv4", ip4(packet_builder{}.raw(link_type::ipv4)), decode_status::ok, k4},
      {"dlt_ipv4_holding_v6", ip6(packet_builder{}.raw(link_type::ipv4)), decode_status::bad_ip_version, nullptr},
      {"dlt_ipv6", ip6(packet_builder{}.raw(link_type::ipv6)), decode_status::ok, k6},
      {"null_inet", ip4(packet_builder{}.null_family(2)), decode_status::ok, k4},
      {"null_inet6_bsd", ip6(packet_builder{}.null_family(24)), decode_status::ok, k6},
      {"null_inet6_freebsd", ip6(packet_builder{}.null_family(28)), decode_status::ok, k6},
      {"null_inet6_darwin", ip6(packet_builder{}.null_family(30)), decode_status::ok, k6},
      {"null_big_endian_host", ip6(packet_builder{}.link(link_type::null).be32(30)), decode_status::ok, k6},
      {"null_other_family", packet_builder{}.null_family(7).payload(40).build(), decode_status::non_ip, nullptr},
      {"loop_inet", ip4(packet_builder{}.loop_family(2)), decode_status::ok, k4},
      {"loop_inet6", ip6(packet_builder{}.loop_family(24)), decode_status::ok, k6},
      {"ppp_ipv4", ip4(packet_builder{}.ppp(0x0021)), decode_status::ok, k4},
      {"ppp_ipv4_no_address_control", ip4(packet_builder{}.ppp(0x0021, false)), decode_status::ok, k4},
      {"ppp_ipv6", ip6(packet_builder{}.ppp(0x0057)), decode_status::ok, k6},
      {"ppp_mpls", ip4(packet_builder{}.ppp(0x0281).mpls(100, true)), decode_status::ok, k4},
      {"ppp_lcp", packet_builder{}.ppp(0xc021).payload(10).build(), decode_status::non_ip_ppp, nullptr},
      {"nflog_ipv4", ip4(packet_builder{}.nflog(2)), decode_status::ok, k4},
      {"nflog_ipv6", ip6(packet_builder{}.nflog(10)), decode_status::ok, k6},
      {"nflog_bridge", packet_builder{}.nflog(7).payload(20).build(), decode_status::nflog_non_ip, nullptr},
      {"nflog_without_payload", packet_builder{}.link(link_type::nflog).bytes({2, 0, 0, 1}).le16(8).le16(1).be32(0).build(),
       decode_status::bad_nflog, nullptr},
      {"unknown_link", packet_builder{}.link(static_cast<link_type>(147)).payload(40).build(),
       decode_status::unknown_link_type, nullptr},
      {"ethernet_arp", packet_builder{}.eth(0x0806).payload(28).build(), decode_status::non_ip, nullptr},
      {"ethernet_lldp", packet_builder{}.eth(0x88cc).payload(28).build(), decode_status::non_ip, nullptr},
      {"ethernet_llc_stp", packet_builder{}.eth(38).bytes({0x42, 0x42, 0x03}).payload(35).build(),
       decode_status::non_ip, nullptr},
      {"ethernet_llc_snap_ipv4", ip4(packet_builder{}.eth(60).bytes({0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00})),
       decode_status::ok, k4},
      {"ethernet_type_0800_holding_v6", ip6(packet_builder{}.eth(0x0800)), decode_status::ok, k6},
      {"ethernet_type_86dd_holding_v4", ip4(packet_builder{}.eth(0x86dd)), decode_status::bad_ip_version, nullptr},
      {"pppoe_discovery", packet_builder{}.eth(0x8863).payload(20).build(), decode_status::non_ip, nullptr},
      {"pppoe_session_ipv4", ip4(packet_builder{}.eth(0x8864).pppoe_session(0x0021)), decode_status::ok, k4},
      {"pppoe_session_ipv6", ip6(packet_builder{}.eth(0x8864).pppoe_session(0x0057)), decode_status::ok, k6},
      {"pppoe_session_lcp", packet_builder{}.eth(0x8864).pppoe_session(0xc021).payload(8).build(),
       decode_status::non_ip_ppp, nullptr},
  };
}

class DecodeLink : public ::testing::TestWithParam<size_t> {};

TEST_P(DecodeLink, DecodesToTheExpectedStatusAndKey) {
  const link_case c = link_cases()[GetParam()];
  SCOPED_TRACE(c.name);
  decoded_packet d;
  decode_status s = decode(c.f, d);
  EXPECT_EQ(s, c.status) << name_of(s);
  if (c.key != nullptr && s == decode_status::ok) {
    EXPECT_EQ(key_of(d), c.key);
  }
}

INSTANTIATE_TEST_SUITE_P(AllLinkTypes, DecodeLink, ::testing::Range<size_t>(0, link_cases().size()),
                         [](const ::testing::TestParamInfo<size_t>& i) { return link_cases()[i.param].name; });

TEST(DecodeLinkErrors, HeadersShorterThanTheLinkLayerAreTruncatedLink) {
  for (link_type t : {link_type::ethernet, link_type::linux_sll, link_type::linux_sll2, link_type::null,
                      link_type::loop, link_type::nflog}) {
    frame f = packet_builder{}.link(t).payload(3).build();
    EXPECT_EQ(status_of(f), decode_status::truncated_link) << static_cast<int>(t);
  }
  EXPECT_EQ(status_of(packet_builder{}.link(link_type::ppp).u8(0xff).build()), decode_status::truncated_link);
}

TEST(DecodeLinkErrors, EmptyFramesNeverDecode) {
  for (link_type t : {link_type::ethernet, link_type::raw, link_type::ipv4, link_type::ipv6, link_type::ppp,
                      link_type::nflog}) {
    packet_view v;
    v.link = t;
    decoded_packet d;
    EXPECT_NE(decode_packet(v, {}, d), decode_status::ok);
  }
}

// ---------------------------------------------------------------- VLAN, MPLS

TEST(DecodeVlan, KeyTakesTheFirstTagOfAnyStack) {
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x8100).vlan(10, 0x0800).ipv4("1.1.1.1", "2.2.2.2", 6).tcp(1, 2).build()),
            "6 1.1.1.1:1 > 2.2.2.2:2 vlan 10");
  EXPECT_EQ(ok_key(packet_builder{}
                       .eth(0x88a8)
                       .vlan(100, 0x8100)
                       .vlan(200, 0x0800)
                       .ipv4("1.1.1.1", "2.2.2.2", 6)
                       .tcp(1, 2)
                       .build()),
            "6 1.1.1.1:1 > 2.2.2.2:2 vlan 100");
  EXPECT_EQ(ok_key(packet_builder{}
                       .eth(0x9100)
                       .vlan(300, 0x8100)
                       .vlan(7, 0x86dd)
                       .ipv6("::1", "::2", 17)
                       .udp(1, 2)
                       .build()),
            "17 ::1:1 > ::2:2 vlan 300");
}

TEST(DecodeVlan, PriorityBitsAreNotPartOfTheId) {
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x8100).vlan(42, 0x0800, 5).ipv4("1.1.1.1", "2.2.2.2", 6).tcp(1, 2).build()),
            "6 1.1.1.1:1 > 2.2.2.2:2 vlan 42");
}

TEST(DecodeVlan, StackUpToTheLimitDecodesOneMoreIsVlanDepth) {
  auto stack = [](int n) {
    packet_builder b;
    b.eth(0x8100);
    for (int i = 0; i < n; ++i) b.vlan(static_cast<uint16_t>(i + 1), i + 1 < n ? 0x8100 : 0x0800);
    return b.ipv4("1.1.1.1", "2.2.2.2", 17).udp(1, 2).build();
  };
  EXPECT_EQ(ok_key(stack(kMaxVlanTags)), "17 1.1.1.1:1 > 2.2.2.2:2 vlan 1");
  EXPECT_EQ(status_of(stack(kMaxVlanTags + 1)), decode_status::vlan_depth);
}

TEST(DecodeVlan, TagCutShortIsTruncatedVlan) {
  frame f = packet_builder{}.eth(0x8100).vlan(10, 0x0800).ipv4("1.1.1.1", "2.2.2.2", 6).build();
  decoded_packet d;
  EXPECT_EQ(decode_packet(f.view(16), {}, d), decode_status::truncated_vlan);
}

TEST(DecodeMpls, StackThenIpv4OrIpv6ByFirstNibble) {
  EXPECT_EQ(ok_key(packet_builder{}
                       .eth(0x8847)
                       .mpls(16, false)
                       .mpls(17, true)
                       .ipv4("1.1.1.1", "2.2.2.2", 6)
                       .tcp(1, 2)
                       .build()),
            "6 1.1.1.1:1 > 2.2.2.2:2 vlan 0");
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x8848).mpls(16, true).ipv6("::1", "::2", 17).udp(1, 2).build()),
            "17 ::1:1 > ::2:2 vlan 0");
}

TEST(DecodeMpls, ControlWordThenEthernetPseudowire) {
  EXPECT_EQ(ok_key(packet_builder{}
                       .eth(0x8847)
                       .mpls(16, true)
                       .pw_control_word()
                       .eth(0x8100)
                       .vlan(55, 0x0800)
                       .ipv4("1.1.1.1", "2.2.2.2", 6)
                       .tcp(1, 2)
                       .build()),
            "6 1.1.1.1:1 > 2.2.2.2:2 vlan 55");
}

TEST(DecodeMpls, VlanBeforeMplsIsTheKeyVlan) {
  EXPECT_EQ(ok_key(packet_builder{}
                       .eth(0x8100)
                       .vlan(9, 0x8847)
                       .mpls(16, true)
                       .ipv4("1.1.1.1", "2.2.2.2", 6)
                       .tcp(1, 2)
                       .build()),
            "6 1.1.1.1:1 > 2.2.2.2:2 vlan 9");
}

TEST(DecodeMpls, LimitsAndTruncation) {
  auto stack = [](int n) {
    packet_builder b;
    b.eth(0x8847);
    for (int i = 0; i < n; ++i) b.mpls(static_cast<uint32_t>(100 + i), i + 1 == n);
    return b.ipv4("1.1.1.1", "2.2.2.2", 17).udp(1, 2).build();
  };
  EXPECT_EQ(status_of(stack(kMaxMplsLabels)), decode_status::ok);
  EXPECT_EQ(status_of(stack(kMaxMplsLabels + 1)), decode_status::mpls_depth);
  frame f = stack(2);
  decoded_packet d;
  EXPECT_EQ(decode_packet(f.view(14 + 6), {}, d), decode_status::truncated_mpls);
  EXPECT_EQ(status_of(packet_builder{}.eth(0x8847).mpls(16, true).bytes({0x12, 0x34}).payload(30).build()),
            decode_status::non_ip);
}

TEST(DecodeMpls, EndlessPseudowireNestingIsBoundedByTheLabelBudget) {
  packet_builder b;
  b.eth(0x8847);
  for (int i = 0; i < 40; ++i) b.mpls(16, true).pw_control_word().eth(0x8847);
  EXPECT_EQ(status_of(b.build()), decode_status::mpls_depth);
}

TEST(DecodePppoe, TruncatedSessionHeader) {
  frame f = packet_builder{}.eth(0x8864).pppoe_session(0x0021).ipv4("1.1.1.1", "2.2.2.2", 6).build();
  decoded_packet d;
  EXPECT_EQ(decode_packet(f.view(14 + 7), {}, d), decode_status::truncated_pppoe);
}

TEST(DecodePppoe, OverQinqTakesTheOuterTag) {
  EXPECT_EQ(ok_key(packet_builder{}
                       .eth(0x88a8)
                       .vlan(20, 0x8100)
                       .vlan(30, 0x8864)
                       .pppoe_session(0x0021)
                       .ipv4("1.1.1.1", "2.2.2.2", 6)
                       .tcp(1, 2)
                       .build()),
            "6 1.1.1.1:1 > 2.2.2.2:2 vlan 20");
}

// ---------------------------------------------------------------- IPv4

TEST(DecodeIpv4, OptionsAreSkippedByIhl) {
  ipv4_options o;
  o.options = {0x82, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00};  // security option + EOL padding
  decoded_packet d;
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17, o).udp(1, 2).build(), &d),
            "17 1.1.1.1:1 > 2.2.2.2:2 vlan 0");
  EXPECT_EQ(d.ip_bytes, 20u + 12u + 8u);
}

TEST(DecodeIpv4, MalformedOptionsHideTheTransportHeaderButKeepTheAddresses) {
  // A security option (fixed 11 bytes) claiming 2 bytes: tshark stops inside
  // the IP header, so the datagram counts with ports 0 (suri-ip_secopt).
  ipv4_options bad;
  bad.options = {0x82, 0x02, 0xf1, 0x35, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0xaa, 0x00};
  decoded_packet d;
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17, bad).udp(5060, 5060).build(), &d),
            "17 1.1.1.1:0 > 2.2.2.2:0 vlan 0");
  EXPECT_EQ(d.ip_bytes, 32u + 8u);
  ipv4_options past_end;
  past_end.options = {0x01, 0x07, 0x09, 0x04};  // record route claiming 9 bytes of 3
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 6, past_end).tcp(1, 2).build()),
            "6 1.1.1.1:0 > 2.2.2.2:0 vlan 0");
  ipv4_options router_alert;
  router_alert.options = {0x94, 0x04, 0x00, 0x00};
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 6, router_alert).tcp(1, 2).build()),
            "6 1.1.1.1:1 > 2.2.2.2:2 vlan 0");
  // A tunnel behind malformed options is not decapsulated either.
  packet_builder b;
  b.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 4, past_end);
  EXPECT_EQ(ok_key(inner_tcp(b).build()), "4 1.1.1.1:0 > 2.2.2.2:0 vlan 0");
}

TEST(DecodeIpv4, IhlBelowFiveIsBadHeader) {
  ipv4_options o;
  o.ihl = 4;
  EXPECT_EQ(status_of(packet_builder{}.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17, o).udp(1, 2).build()),
            decode_status::bad_ipv4_header);
}

TEST(DecodeIpv4, FirstFragmentKeepsPortsLaterFragmentHasNone) {
  ipv4_options first;
  first.more_fragments = true;
  first.id = 77;
  decoded_packet d;
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17, first).udp(9, 53).payload(100).build(), &d),
            "17 1.1.1.1:9 > 2.2.2.2:53 vlan 0");
  EXPECT_EQ(d.frag, fragment_kind::first);
  EXPECT_EQ(d.frag_id, 77u);

  ipv4_options later;
  later.frag_offset = 14;
  later.id = 77;
  // The bytes where a header would be look like a UDP header: they must not be read as one.
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17, later).udp(9, 53).build(), &d),
            "17 1.1.1.1:0 > 2.2.2.2:0 vlan 0");
  EXPECT_EQ(d.frag, fragment_kind::later);
  EXPECT_EQ(d.frag_id, 77u);
}

TEST(DecodeIpv4, UnfragmentedDatagramHasNoFragmentId) {
  decoded_packet d;
  ok_key(tcp4_frame(), &d);
  EXPECT_EQ(d.frag, fragment_kind::none);
  EXPECT_EQ(d.frag_id, 0u);
}

TEST(DecodeIpv4, HeaderCutBeforeAddressesIsTruncatedIp) {
  frame f = tcp4_frame();
  decoded_packet d;
  for (uint32_t cap = 14; cap < 14 + 20; ++cap)
    EXPECT_EQ(decode_packet(f.view(cap), {}, d), decode_status::truncated_ip) << cap;
  EXPECT_EQ(decode_packet(f.view(34), {}, d), decode_status::ok);
  EXPECT_EQ(category_of(decode_status::truncated_ip), status_category::malformed);
}

// ---------------------------------------------------------------- IPv6 extension headers

TEST(DecodeIpv6, ExtensionChainIsSkippedForTheProtocol) {
  decoded_packet d;
  EXPECT_EQ(ok_key(packet_builder{}
                       .eth(0x86dd)
                       .ipv6("2001:db8::1", "2001:db8::2", 0)
                       .ipv6_ext(60)
                       .ipv6_ext(43, 2)
                       .ipv6_ext(17, 1)
                       .udp(1, 53)
                       .build(),
                   &d),
            "17 2001:db8::1:1 > 2001:db8::2:53 vlan 0");
  EXPECT_EQ(d.ip_bytes, 40u + 8u + 24u + 16u + 8u);
}

TEST(DecodeIpv6, AhEspMobilityAndNoNextHeaderAreProtocols) {
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x86dd).ipv6("::1", "::2", 0).ipv6_ext(51).ah(6, 5).tcp(1, 2).build()),
            "51 ::1:0 > ::2:0 vlan 0");
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x86dd).ipv6("::1", "::2", 60).ipv6_ext(50).esp(9).build()),
            "50 ::1:0 > ::2:0 vlan 0");
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x86dd).ipv6("::1", "::2", 135).payload(8).build()), "135 ::1:0 > ::2:0 vlan 0");
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x86dd).ipv6("::1", "::2", 0).ipv6_ext(59).build()), "59 ::1:0 > ::2:0 vlan 0");
}

TEST(DecodeIpv6, TruncatedExtensionHeaderGivesTheLastCapturedNextHeader) {
  frame f = packet_builder{}.eth(0x86dd).ipv6("::1", "::2", 0).ipv6_ext(43, 0).ipv6_ext(6, 1).tcp(1, 2).build();
  decoded_packet d;
  // Hop-by-Hop not captured at all: proto is the IPv6 header's next header (0).
  ASSERT_EQ(decode_packet(f.view(54), {}, d), decode_status::ok);
  EXPECT_EQ(key_of(d), "0 ::1:0 > ::2:0 vlan 0");
  EXPECT_EQ(d.ip_bytes, 40u + 8u + 16u + 20u);
  // Hop-by-Hop whole, Routing cut: proto is Hop-by-Hop's next header (43).
  ASSERT_EQ(decode_packet(f.view(54 + 8 + 10), {}, d), decode_status::ok);
  EXPECT_EQ(key_of(d), "43 ::1:0 > ::2:0 vlan 0");
  // Both whole, TCP cut: proto 6 without ports.
  ASSERT_EQ(decode_packet(f.view(54 + 24 + 2), {}, d), decode_status::ok);
  EXPECT_EQ(key_of(d), "6 ::1:0 > ::2:0 vlan 0");
}

TEST(DecodeIpv6, HostileEndlessChainStopsAtTheLimit) {
  packet_builder b;
  b.eth(0x86dd).ipv6("::1", "::2", 60);
  for (int i = 0; i < 100; ++i) b.ipv6_ext(60);
  EXPECT_EQ(status_of(b.build()), decode_status::ipv6_ext_depth);

  packet_builder ok;
  ok.eth(0x86dd).ipv6("::1", "::2", 60);
  for (int i = 0; i < kMaxIpv6ExtHeaders; ++i) ok.ipv6_ext(i + 1 < kMaxIpv6ExtHeaders ? 60 : 17);
  EXPECT_EQ(ok_key(ok.udp(1, 2).build()), "17 ::1:1 > ::2:2 vlan 0");
}

TEST(DecodeIpv6, Fragments) {
  decoded_packet d;
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x86dd).ipv6("::1", "::2", 44).ipv6_frag(17, 0, true, 0xdead).udp(5, 53).build(), &d),
            "17 ::1:5 > ::2:53 vlan 0");
  EXPECT_EQ(d.frag, fragment_kind::first);
  EXPECT_EQ(d.frag_id, 0xdeadu);
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x86dd).ipv6("::1", "::2", 44).ipv6_frag(17, 100, false, 0xdead).udp(5, 53).build(), &d),
            "17 ::1:0 > ::2:0 vlan 0");
  EXPECT_EQ(d.frag, fragment_kind::later);
  EXPECT_EQ(d.frag_id, 0xdeadu);
  // Offset 0 without M: an atomic fragment is a whole datagram.
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x86dd).ipv6("::1", "::2", 44).ipv6_frag(6, 0, false, 1).tcp(5, 80).build(), &d),
            "6 ::1:5 > ::2:80 vlan 0");
  EXPECT_EQ(d.frag, fragment_kind::none);
}

TEST(DecodeIpv6, HeaderCutBeforeAddressesIsTruncatedIp) {
  frame f = packet_builder{}.eth(0x86dd).ipv6("::1", "::2", 59).build();
  decoded_packet d;
  EXPECT_EQ(decode_packet(f.view(14 + 39), {}, d), decode_status::truncated_ip);
  EXPECT_EQ(decode_packet(f.view(14 + 40), {}, d), decode_status::ok);
}

// ---------------------------------------------------------------- tunnels


TEST(DecodeTunnels, IpInIpAllFourCombinations) {
  decoded_packet d;
  packet_builder b44;
  b44.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 4);
  EXPECT_EQ(ok_key(inner_tcp(b44).build(), &d), kInner);
  EXPECT_EQ(d.tunnel, tunnel_kind::ip_in_ip);
  EXPECT_EQ(d.ip_bytes, 40u);

  packet_builder b64;
  b64.eth(0x86dd).ipv6("2001::1", "2001::2", 4);
  EXPECT_EQ(ok_key(inner_tcp(b64).build()), kInner);

  EXPECT_EQ(ok_key(packet_builder{}.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 41).ipv6("::a", "::b", 17).udp(1, 2).build()),
            "17 ::a:1 > ::b:2 vlan 0");
  // 6in6 behind an SRv6 routing header
  EXPECT_EQ(ok_key(packet_builder{}
                       .eth(0x86dd)
                       .ipv6("2001::1", "2001::2", 43)
                       .ipv6_ext(41, 2)
                       .ipv6("::a", "::b", 58)
                       .icmp(128, 0)
                       .build()),
            "58 ::a:0 > ::b:0 vlan 0");
}

TEST(DecodeTunnels, DisabledDecapsulationMetersTheOuterHeader) {
  packet_builder b;
  b.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 4);
  decoded_packet d;
  EXPECT_EQ(ok_key(inner_tcp(b).build(), &d, false), "4 1.1.1.1:0 > 2.2.2.2:0 vlan 0");
  EXPECT_EQ(d.tunnel, tunnel_kind::none);
}

TEST(DecodeTunnels, GreVariants) {
  decoded_packet d;
  for (bool csum : {false, true})
    for (bool key : {false, true})
      for (bool seq : {false, true}) {
        packet_builder b;
        b.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 47).gre(0x0800, csum, key, seq);
        EXPECT_EQ(ok_key(inner_tcp(b).build(), &d), kInner) << csum << key << seq;
        EXPECT_EQ(d.tunnel, tunnel_kind::gre);
      }
  packet_builder eth;
  eth.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 47).gre(0x6558).eth(0x8100).vlan(77, 0x0800);
  EXPECT_EQ(ok_key(inner_tcp(eth).build()), kInner);  // inner tag is not the key's vlan
  packet_builder mpls;
  mpls.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 47).gre(0x8847).mpls(5, true);
  EXPECT_EQ(ok_key(inner_tcp(mpls).build()), kInner);
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 47).gre(0x86dd).ipv6("::a", "::b", 17).udp(1, 2).build()),
            "17 ::a:1 > ::b:2 vlan 0");
}

TEST(DecodeTunnels, ErspanTypesOneTwoThree) {
  decoded_packet d;
  packet_builder t2;
  t2.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 47).gre(0x88be, false, false, true).erspan2().eth(0x0800);
  EXPECT_EQ(ok_key(inner_tcp(t2).build(), &d), kInner);
  EXPECT_EQ(d.tunnel, tunnel_kind::erspan);
  packet_builder t1;
  t1.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 47).gre(0x88be).eth(0x0800);
  EXPECT_EQ(ok_key(inner_tcp(t1).build()), kInner);
  for (bool platform : {false, true}) {
    packet_builder t3;
    t3.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 47).gre(0x22eb, false, false, true).erspan3(platform).eth(0x0800);
    EXPECT_EQ(ok_key(inner_tcp(t3).build()), kInner) << platform;
  }
}

TEST(DecodeTunnels, NestedGre) {
  packet_builder b;
  b.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 47).gre(0x0800).ipv4("3.3.3.3", "4.4.4.4", 47).gre(0x0800);
  decoded_packet d;
  EXPECT_EQ(ok_key(inner_tcp(b).build(), &d), kInner);
  EXPECT_EQ(d.tunnel, tunnel_kind::gre);
}

TEST(DecodeTunnels, DepthIsBounded) {
  packet_builder b;
  b.eth(0x0800);
  for (int i = 0; i < kMaxTunnelDepth + 2; ++i) b.ipv4("10.0.0." + std::to_string(i + 1), "10.9.9.9", 4);
  inner_tcp(b);
  // kMaxTunnelDepth decapsulations from the outermost header: the header at that depth is metered.
  EXPECT_EQ(ok_key(b.build()), "4 10.0.0." + std::to_string(kMaxTunnelDepth + 1) + ":0 > 10.9.9.9:0 vlan 0");
}

TEST(DecodeTunnels, PptpEnhancedGreIsNotDescended) {
  frame f = packet_builder{}
                .eth(0x0800)
                .ipv4("1.1.1.1", "2.2.2.2", 47)
                .gre(0x880b, false, true, true, 1)
                .bytes({0xff, 0x03, 0x00, 0x21})
                .ipv4("192.168.0.1", "192.168.0.2", 17)
                .udp(1, 2)
                .build();
  decoded_packet d;
  EXPECT_EQ(ok_key(f, &d), "47 1.1.1.1:0 > 2.2.2.2:0 vlan 0");
  EXPECT_EQ(d.tunnel, tunnel_kind::none);
}

TEST(DecodeTunnels, NonIpPayloadMetersTheOuterFlow) {
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 47).gre(0x6558).eth(0x0806).payload(28).build()),
            "47 1.1.1.1:0 > 2.2.2.2:0 vlan 0");
  decoded_packet d;
  EXPECT_EQ(ok_key(packet_builder{}
                       .eth(0x0800)
                       .ipv4("1.1.1.1", "2.2.2.2", 17)
                       .udp(50000, 4789)
                       .vxlan(5)
                       .eth(0x0806)
                       .payload(28)
                       .build(),
                   &d),
            "17 1.1.1.1:50000 > 2.2.2.2:4789 vlan 0");
  EXPECT_EQ(d.tunnel, tunnel_kind::none);
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 47).gre(0x0001).payload(20).build()),
            "47 1.1.1.1:0 > 2.2.2.2:0 vlan 0");
}

TEST(DecodeTunnels, InnerHeaderCutBeforeAddressesMetersTheOuterFlow) {
  packet_builder b;
  b.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(50000, 4789).vxlan(5).eth(0x0800);
  frame f = inner_tcp(b).build();
  decoded_packet d;
  const uint32_t inner_ip = 14 + 20 + 8 + 8 + 14;
  ASSERT_EQ(decode_packet(f.view(inner_ip + 19), {}, d), decode_status::ok);
  EXPECT_EQ(key_of(d), "17 1.1.1.1:50000 > 2.2.2.2:4789 vlan 0");
  ASSERT_EQ(decode_packet(f.view(inner_ip + 20), {}, d), decode_status::ok);
  EXPECT_EQ(key_of(d), "6 192.168.0.1:0 > 192.168.0.2:0 vlan 0");
}

TEST(DecodeTunnels, VxlanOnEitherPort) {
  decoded_packet d;
  packet_builder dst;
  dst.eth(0x8100).vlan(12, 0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(50000, 4789).vxlan(5).eth(0x8100).vlan(99, 0x0800);
  EXPECT_EQ(ok_key(inner_tcp(dst).build(), &d), "6 192.168.0.1:40000 > 192.168.0.2:443 vlan 12");
  EXPECT_EQ(d.tunnel, tunnel_kind::vxlan);
  packet_builder src;
  src.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(4789, 50000).vxlan(5).eth(0x0800);
  EXPECT_EQ(ok_key(inner_tcp(src).build()), kInner);
}

TEST(DecodeTunnels, UdpLengthMustFitForTheTunnelToBeDecoded) {
  const char* outer = "17 1.1.1.1:50000 > 2.2.2.2:4789 vlan 0";
  auto vxlan = [](int udp_length) {
    packet_builder b;
    b.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(50000, 4789, udp_length).vxlan(5).eth(0x0800);
    return inner_tcp(b).build();
  };
  const int whole = 8 + 8 + 14 + 20 + 20;
  EXPECT_EQ(ok_key(vxlan(-1)), kInner);
  EXPECT_EQ(ok_key(vxlan(whole)), kInner);
  EXPECT_EQ(ok_key(vxlan(0)), outer);          // BIG TCP style: tshark stops at UDP
  EXPECT_EQ(ok_key(vxlan(7)), outer);
  EXPECT_EQ(ok_key(vxlan(whole + 1)), outer);  // beyond the IP payload
  // A UDP length that ends inside the inner IP header cuts it: the outer flow.
  EXPECT_EQ(ok_key(vxlan(8 + 8 + 14 + 19)), outer);
  decoded_packet d;
  EXPECT_EQ(ok_key(vxlan(8 + 8 + 14 + 20 + 3), &d), "6 192.168.0.1:0 > 192.168.0.2:0 vlan 0");
}

TEST(DecodeTunnels, GtpUGpduWithOptionalFieldsAndExtensionHeaders) {
  decoded_packet d;
  packet_builder plain;
  plain.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(2152, 2152).gtpu();
  EXPECT_EQ(ok_key(inner_tcp(plain).build(), &d), kInner);
  EXPECT_EQ(d.tunnel, tunnel_kind::gtp_u);
  packet_builder seq;
  seq.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(2152, 2152).gtpu(0xff, {}, true);
  EXPECT_EQ(ok_key(inner_tcp(seq).build()), kInner);
  packet_builder ext;
  ext.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(2152, 2152).gtpu(0xff, {1, 2});
  EXPECT_EQ(ok_key(inner_tcp(ext).build()), kInner);
  EXPECT_EQ(ok_key(packet_builder{}.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(2152, 2152).gtpu().ipv6("::a", "::b", 50).esp(1).build()),
            "50 ::a:0 > ::b:0 vlan 0");
  // Echo request (type 1) carries no user packet.
  packet_builder echo;
  echo.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(2152, 2152).gtpu(1);
  EXPECT_EQ(ok_key(inner_tcp(echo).build()), "17 1.1.1.1:2152 > 2.2.2.2:2152 vlan 0");
}

TEST(DecodeTunnels, GtpUEndlessExtensionChainFallsBackToOuter) {
  packet_builder b;
  b.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(2152, 2152).gtpu(0xff, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  EXPECT_EQ(ok_key(inner_tcp(b).build()), "17 1.1.1.1:2152 > 2.2.2.2:2152 vlan 0");
}

TEST(DecodeTunnels, GeneveEthernetOrIpWithOptions) {
  decoded_packet d;
  packet_builder eth;
  eth.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(12345, 6081).geneve(0x6558, 2).eth(0x0800);
  EXPECT_EQ(ok_key(inner_tcp(eth).build(), &d), kInner);
  EXPECT_EQ(d.tunnel, tunnel_kind::geneve);
  packet_builder ip;
  ip.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(12345, 6081).geneve(0x0800);
  EXPECT_EQ(ok_key(inner_tcp(ip).build()), kInner);
}

TEST(DecodeTunnels, TeredoWithAndWithoutIndicationHeaders) {
  const char* k = "17 2001:0:1::1:1 > 2001:0:2::2:2 vlan 0";
  auto teredo = [](packet_builder b) { return b.ipv6("2001:0:1::1", "2001:0:2::2", 17).udp(1, 2).build(); };
  packet_builder base;
  base.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(40000, 3544);
  decoded_packet d;
  EXPECT_EQ(ok_key(teredo(base), &d), k);
  EXPECT_EQ(d.tunnel, tunnel_kind::teredo);
  packet_builder origin = base;
  origin.teredo_origin();
  EXPECT_EQ(ok_key(teredo(origin)), k);
  packet_builder auth = base;
  auth.teredo_auth(3, 4).teredo_origin();
  EXPECT_EQ(ok_key(teredo(auth)), k);
  // Teredo carries only IPv6.
  packet_builder v4 = base;
  EXPECT_EQ(ok_key(inner_tcp(v4).build()), "17 1.1.1.1:40000 > 2.2.2.2:3544 vlan 0");
}

TEST(DecodeTunnels, FirstFragmentOfTheOuterPacketIsRemembered) {
  ipv4_options o;
  o.more_fragments = true;
  o.id = 4242;
  packet_builder b;
  b.eth(0x8100).vlan(3, 0x0800).ipv4("1.1.1.1", "2.2.2.2", 17, o).udp(2152, 2152).gtpu();
  decoded_packet d;
  EXPECT_EQ(ok_key(inner_tcp(b).build(), &d), "6 192.168.0.1:40000 > 192.168.0.2:443 vlan 3");
  EXPECT_EQ(d.frag, fragment_kind::none);
  ASSERT_TRUE(d.has_outer_first_fragment);
  EXPECT_EQ(d.outer_first_fragment.id, 4242u);
  decoded_packet outer;
  outer.key = d.outer_first_fragment.key;
  EXPECT_EQ(key_of(outer), "17 1.1.1.1:2152 > 2.2.2.2:2152 vlan 3");
  EXPECT_EQ(outer.key.ip_version, 4);
}

TEST(DecodeTunnels, LaterFragmentOfTheOuterPacketIsNeverDecapsulated) {
  ipv4_options o;
  o.frag_offset = 185;
  o.id = 4242;
  packet_builder b;
  b.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17, o).udp(2152, 2152).gtpu();
  decoded_packet d;
  EXPECT_EQ(ok_key(inner_tcp(b).build(), &d), "17 1.1.1.1:0 > 2.2.2.2:0 vlan 0");
  EXPECT_EQ(d.frag, fragment_kind::later);
  EXPECT_EQ(d.frag_id, 4242u);
  EXPECT_FALSE(d.has_outer_first_fragment);
  EXPECT_EQ(d.tunnel, tunnel_kind::none);
}

// ---------------------------------------------------------------- truncation sweeps

std::vector<frame> sweep_frames() {
  std::vector<frame> v;
  v.push_back(tcp4_frame());
  ipv4_options opt;
  opt.options = {1, 1, 1, 0};
  v.push_back(packet_builder{}.eth(0x8100).vlan(1, 0x0800).ipv4("1.1.1.1", "2.2.2.2", 17, opt).udp(1, 2).build());
  v.push_back(packet_builder{}.eth(0x86dd).ipv6("::1", "::2", 0).ipv6_ext(44).ipv6_frag(6, 0, true, 5).tcp(1, 2).build());
  packet_builder vx;
  vx.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(1, 4789).vxlan(1).eth(0x8100).vlan(2, 0x0800);
  v.push_back(inner_tcp(vx).build());
  packet_builder gtp;
  gtp.eth(0x88a8).vlan(1, 0x8100).vlan(2, 0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(2152, 2152).gtpu(0xff, {1, 2});
  v.push_back(inner_tcp(gtp).build());
  packet_builder gre;
  gre.eth(0x8847).mpls(1, true).ipv4("1.1.1.1", "2.2.2.2", 47).gre(0x22eb, true, true, true).erspan3(true).eth(0x0800);
  v.push_back(inner_tcp(gre).build());
  packet_builder gen;
  gen.eth(0x8864).pppoe_session(0x0021).ipv4("1.1.1.1", "2.2.2.2", 17).udp(1, 6081).geneve(0x6558, 1).eth(0x0800);
  v.push_back(inner_tcp(gen).build());
  v.push_back(packet_builder{}.nflog(2).ipv4("1.1.1.1", "2.2.2.2", 17).udp(1, 3544).teredo_auth(1, 1).ipv6("::1", "::2", 17).udp(1, 2).build());
  return v;
}

TEST(DecodeTruncation, EveryCaplenGivesASaneStatusAndNeverReadsPastIt) {
  for (const frame& f : sweep_frames()) {
    decoded_packet full;
    ASSERT_EQ(decode(f, full), decode_status::ok);
    for (uint32_t cap = 0; cap <= f.size(); ++cap) {
      // Copy into an exactly sized buffer so ASan catches any read past caplen.
      std::vector<uint8_t> exact(f.bytes.begin(), f.bytes.begin() + cap);
      packet_view v = f.view(cap);
      v.data = exact.data();
      decoded_packet d;
      decode_status s = decode_packet(v, {}, d);
      ASSERT_LT(static_cast<size_t>(s), kDecodeStatusCount);
      EXPECT_EQ(d.frame_bytes, f.size());
      if (s == decode_status::ok) {
        EXPECT_TRUE(d.key.ip_version == 4 || d.key.ip_version == 6) << cap;
        EXPECT_GE(d.ip_bytes, d.key.ip_version == 4 ? 20u : 40u);
      } else {
        EXPECT_NE(category_of(s), status_category::none) << cap;
        EXPECT_EQ(d.key, flow_key{}) << cap;  // no partial key on failure
      }
    }
  }
}

TEST(DecodeTruncation, ShorterCaptureNeverInventsAnInnerFlow) {
  // Cutting a tunnel frame can only move the key outward (or lose ports), never elsewhere.
  packet_builder vx;
  vx.eth(0x0800).ipv4("1.1.1.1", "2.2.2.2", 17).udp(50000, 4789).vxlan(1).eth(0x0800);
  frame f = inner_tcp(vx).build();
  for (uint32_t cap = 34; cap <= f.size(); ++cap) {
    decoded_packet d;
    ASSERT_EQ(decode_packet(f.view(cap), {}, d), decode_status::ok);
    const std::string k = key_of(d);
    EXPECT_TRUE(k == kInner || k == "6 192.168.0.1:0 > 192.168.0.2:0 vlan 0" ||
                k == "17 1.1.1.1:50000 > 2.2.2.2:4789 vlan 0" || k == "17 1.1.1.1:0 > 2.2.2.2:0 vlan 0")
        << cap << " " << k;
  }
}

TEST(DecodeFastPath, PlainFramesAgreeWithTheGeneralPath) {
  // decode_packet has a straight-line path for Ethernet (+ one 802.1Q tag) /
  // IPv4 or IPv6 / TCP or UDP. The same IP bytes under link type raw always
  // take the general path: every field but the frame length and the vlan
  // must agree, at every caplen.
  ipv4_options short_total;
  short_total.total_length = 30;  // the TCP header is cut by the declared length
  struct plain_case {
    frame f;
    uint32_t link_bytes;
    uint16_t vlan;
  };
  std::vector<plain_case> cases = {
      {tcp4_frame(), 14, 0},
      {packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 17).udp(5353, 53).payload(30).build(), 14, 0},
      {packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 17).udp(40000, 4789).vxlan(1).eth(0x0800)
           .ipv4("10.1.0.1", "10.1.0.2", 6).tcp(5, 6).build(), 14, 0},
      {packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 6, short_total).tcp(7, 8).build(), 14, 0},
      {packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 1).icmp(0, 0).build(), 14, 0},
      {packet_builder{}.eth(0x8100).vlan(33, 0x0800).ipv4("10.0.0.1", "10.0.0.2", 6).tcp(1, 2).build(), 18, 33},
      {packet_builder{}.eth(0x86dd).ipv6("2001:db8::1", "2001:db8::2", 6).tcp(1, 443).payload(9).build(), 14, 0},
      {packet_builder{}.eth(0x8100).vlan(7, 0x86dd).ipv6("2001:db8::1", "2001:db8::2", 17).udp(1, 53).build(), 18, 7},
      {packet_builder{}.eth(0x86dd).ipv6("2001:db8::1", "2001:db8::2", 17, 4).udp(1, 53).build(), 14, 0},
      {packet_builder{}.eth(0x86dd).ipv6("2001:db8::1", "2001:db8::2", 0).ipv6_ext(6).tcp(1, 2).build(), 14, 0},
      {packet_builder{}.eth(0x0800).ipv6("2001:db8::1", "2001:db8::2", 6).tcp(1, 2).build(), 14, 0},
      // The straight-line path tests the tunnel ports whatever the
      // protocol: TCP on one must come out as the same TCP flow.
      {packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 6).tcp(40000, 4789).payload(4).build(), 14, 0},
      {packet_builder{}.eth(0x86dd).ipv6("2001:db8::1", "2001:db8::2", 6).tcp(3544, 80).build(), 14, 0},
      {packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 17).udp(2152, 9).payload(30).build(), 14, 0},
      {packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 17).udp(9, 6081).payload(30).build(), 14, 0},
      {packet_builder{}.eth(0x86dd).ipv6("2001:db8::1", "2001:db8::2", 17).udp(3544, 9).payload(30).build(), 14, 0},
      // Neither TCP nor UDP, with ports where TCP/UDP have them.
      {packet_builder{}.eth(0x0800).ipv4("10.0.0.1", "10.0.0.2", 132).sctp(1, 2).build(), 14, 0},
      {packet_builder{}.eth(0x86dd).ipv6("2001:db8::1", "2001:db8::2", 132).sctp(1, 2).build(), 14, 0},
  };
  for (const plain_case& c : cases) {
    const frame& f = c.f;
    for (uint32_t cap = c.link_bytes; cap <= f.size(); ++cap) {
      decoded_packet eth, raw;
      packet_view v = f.view(cap);
      packet_view r = v;
      r.data += c.link_bytes;
      r.caplen -= c.link_bytes;
      r.wire_len -= c.link_bytes;
      r.link = link_type::raw;
      const decode_status se = decode_packet(v, {}, eth);
      const decode_status sr = decode_packet(r, {}, raw);
      ASSERT_EQ(se, sr) << cap;
      if (se != decode_status::ok) continue;
      EXPECT_EQ(eth.key.vlan, c.vlan);
      raw.key.vlan = c.vlan;
      EXPECT_EQ(eth.key, raw.key) << cap << " " << key_of(eth) << " vs " << key_of(raw);
      EXPECT_EQ(eth.ip_bytes, raw.ip_bytes) << cap;
      EXPECT_EQ(eth.tcp_flags, raw.tcp_flags) << cap;
      EXPECT_EQ(eth.tunnel, raw.tunnel) << cap;
      EXPECT_EQ(eth.frag, raw.frag) << cap;
      EXPECT_EQ(eth.icmp_type_code, raw.icmp_type_code) << cap;
      EXPECT_EQ(eth.frame_bytes, raw.frame_bytes + c.link_bytes) << cap;
    }
  }
}

TEST(DecodeStatus, NamesAndCategoriesCoverEveryReason) {
  for (size_t i = 0; i < kDecodeStatusCount; ++i) {
    EXPECT_FALSE(kDecodeStatusNames[i].empty());
    EXPECT_EQ(kDecodeStatusCategory[i] == status_category::none, i == 0);
  }
}

}  // namespace
}  // namespace flower
