// packet_filter: tcpdump expressions over hand-built frames, per link type.

#include "capture/packet_filter.h"

#include <cctype>
#include <cstdint>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace flower {
namespace {

using bytes = std::vector<uint8_t>;

// A tiny fluent frame builder: Ethernet, optional 802.1Q tags, IPv4, TCP/UDP.
class frame {
 public:
  static frame ethernet() {
    frame f;
    f.ethernet_ = true;
    return f;
  }
  static frame raw_ip() { return frame{}; }
  frame& vlan(uint16_t id) {
    vlans_.push_back(id);
    return *this;
  }
  frame& tcp(uint16_t sport, uint16_t dport) {
    proto_ = 6;
    sport_ = sport;
    dport_ = dport;
    return *this;
  }
  frame& udp(uint16_t sport, uint16_t dport) {
    proto_ = 17;
    sport_ = sport;
    dport_ = dport;
    return *this;
  }

  bytes build() const {
    bytes b;
    auto u16 = [&](uint16_t v) {
      b.push_back(static_cast<uint8_t>(v >> 8));
      b.push_back(static_cast<uint8_t>(v));
    };
    if (ethernet_) {
      for (int m : {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2}) b.push_back(static_cast<uint8_t>(m));
      for (uint16_t id : vlans_) {
        u16(0x8100);
        u16(id);
      }
      u16(0x0800);
    }
    const size_t l4_len = proto_ == 6 ? 20 : 8;
    b.push_back(0x45);
    b.push_back(0);
    u16(static_cast<uint16_t>(20 + l4_len));
    u16(1);
    u16(0);
    b.push_back(64);
    b.push_back(proto_);
    u16(0);
    for (int a : {10, 0, 0, 1, 10, 0, 0, 2}) b.push_back(static_cast<uint8_t>(a));
    u16(sport_);
    u16(dport_);
    if (proto_ == 6) {
      for (int i = 0; i < 8; ++i) b.push_back(0);
      b.push_back(0x50);
      b.push_back(0x02);  // SYN
      u16(1024);
      u16(0);
      u16(0);
    } else {
      u16(8);
      u16(0);
    }
    return b;
  }

 private:
  bool ethernet_ = false;
  std::vector<uint16_t> vlans_;
  uint8_t proto_ = 6;
  uint16_t sport_ = 0, dport_ = 0;
};

packet_view view_of(const bytes& b, link_type link = link_type::ethernet) {
  return packet_view{b.data(), static_cast<uint32_t>(b.size()), static_cast<uint32_t>(b.size()),
                     1700000000123456789ull, link};
}

const bytes tcp_frame = frame::ethernet().tcp(40000, 443).build();
const bytes dns_frame = frame::ethernet().udp(40001, 53).build();
const bytes dns_reply = frame::ethernet().udp(53, 40001).build();
const bytes udp_other = frame::ethernet().udp(40002, 5353).build();
const bytes vlan_tcp = frame::ethernet().vlan(100).tcp(40003, 80).build();
const bytes vlan_udp = frame::ethernet().vlan(100).udp(40004, 53).build();

struct filter_case {
  const char* expression;
  std::vector<bool> expected;  // tcp, dns, dns reply, udp other, vlan tcp, vlan udp
};

void PrintTo(const filter_case& c, std::ostream* os) { *os << '"' << c.expression << '"'; }

class packet_filter_cases : public ::testing::TestWithParam<filter_case> {};

TEST_P(packet_filter_cases, matches_like_tcpdump) {
  packet_filter f = packet_filter::compile(GetParam().expression);
  EXPECT_FALSE(f.empty());
  EXPECT_EQ(f.expression(), GetParam().expression);
  const bytes* frames[] = {&tcp_frame, &dns_frame, &dns_reply, &udp_other, &vlan_tcp, &vlan_udp};
  uint64_t yes = 0;
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(f.matches(view_of(*frames[i])), GetParam().expected[i]) << "frame " << i;
    yes += GetParam().expected[i];
  }
  EXPECT_EQ(f.counters().matched, yes);
  EXPECT_EQ(f.counters().rejected, 6 - yes);
  EXPECT_EQ(f.counters().uncompilable, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    expressions, packet_filter_cases,
    ::testing::Values(filter_case{"tcp", {true, false, false, false, false, false}},
                      filter_case{"udp port 53", {false, true, true, false, false, false}},
                      filter_case{"udp dst port 53", {false, true, false, false, false, false}},
                      filter_case{"vlan and tcp", {false, false, false, false, true, false}},
                      filter_case{"vlan 100 and udp port 53", {false, false, false, false, false, true}},
                      filter_case{"not udp", {true, false, false, false, true, true}}),
    [](const auto& test) {
      std::string name;
      for (const char* c = test.param.expression; *c; ++c) name += std::isalnum(*c) ? *c : '_';
      return name;
    });

TEST(packet_filter, empty_expression_matches_everything) {
  for (const char* e : {"", "  \t"}) {
    packet_filter f = packet_filter::compile(e);
    EXPECT_TRUE(f.empty());
    EXPECT_TRUE(f.matches(view_of(tcp_frame)));
    EXPECT_TRUE(f.matches(view_of(dns_frame, link_type::nflog)));
  }
  packet_filter none;
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(none.matches(view_of(tcp_frame)));
}

TEST(packet_filter, keep_matching_compacts_a_batch_in_order) {
  std::vector<packet_view> batch{view_of(tcp_frame), view_of(dns_frame), view_of(udp_other), view_of(dns_reply),
                                 view_of(vlan_tcp)};
  packet_filter f = packet_filter::compile("udp port 53");
  ASSERT_EQ(f.keep_matching(batch), 2u);
  EXPECT_EQ(batch[0].data, dns_frame.data());
  EXPECT_EQ(batch[1].data, dns_reply.data());
  packet_filter all;
  EXPECT_EQ(all.keep_matching(batch), batch.size());
  EXPECT_EQ(batch[4].data, vlan_tcp.data());  // untouched
}

TEST(packet_filter, bad_expression_throws_with_libpcaps_message) {
  try {
    packet_filter::compile("tcp port eleventy");
    FAIL() << "no error";
  } catch (const capture_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("tcp port eleventy"), std::string::npos) << msg;
    // libpcap's own words: an unknown port name.
    EXPECT_NE(msg.find("eleventy"), msg.rfind("tcp port eleventy")) << msg;
    EXPECT_NE(msg.find("unknown"), std::string::npos) << msg;
  }
  EXPECT_THROW(packet_filter::compile("tcp and and"), capture_error);
  EXPECT_THROW(packet_filter::compile("host 300.1.1.1"), capture_error);
}

TEST(packet_filter, compiles_per_link_type_on_first_use) {
  packet_filter f = packet_filter::compile("tcp port 443");
  const bytes raw_tcp = frame::raw_ip().tcp(1, 443).build();
  const bytes raw_udp = frame::raw_ip().udp(1, 443).build();
  // The same bytes read as Ethernet would not even be IPv4.
  EXPECT_TRUE(f.matches(view_of(raw_tcp, link_type::raw)));
  EXPECT_FALSE(f.matches(view_of(raw_udp, link_type::raw)));
  EXPECT_TRUE(f.matches(view_of(raw_tcp, link_type::ipv4)));
  EXPECT_FALSE(f.matches(view_of(raw_tcp, link_type::ethernet)));
  EXPECT_TRUE(f.matches(view_of(tcp_frame, link_type::ethernet)));
  EXPECT_EQ(f.counters().matched, 3u);
  EXPECT_EQ(f.counters().rejected, 2u);
}

TEST(packet_filter, uncompilable_link_type_never_matches_and_is_counted) {
  packet_filter f = packet_filter::compile("vlan and tcp");  // no VLAN tags on raw IP
  const bytes raw_tcp = frame::raw_ip().tcp(1, 443).build();
  EXPECT_FALSE(f.matches(view_of(raw_tcp, link_type::raw)));
  EXPECT_FALSE(f.matches(view_of(raw_tcp, link_type::raw)));
  EXPECT_EQ(f.counters().uncompilable, 2u);
  EXPECT_TRUE(f.matches(view_of(vlan_tcp)));  // Ethernet still works
  EXPECT_EQ(f.counters().matched, 1u);
}

TEST(packet_filter, link_types_beyond_the_table_are_counted_as_uncompilable) {
  packet_filter f = packet_filter::compile("ip");
  const bytes raw_tcp = frame::raw_ip().tcp(1, 443).build();
  // Ethernet takes slot 0; fill the rest with other types libpcap knows.
  const uint16_t others[] = {101, 228, 12, 50, 104, 113, 276, 0};
  static_assert(std::size(others) == packet_filter::max_link_types);
  for (uint16_t t : others) f.matches(view_of(raw_tcp, static_cast<link_type>(t)));
  const uint64_t before = f.counters().uncompilable;
  EXPECT_FALSE(f.matches(view_of(raw_tcp, static_cast<link_type>(others[7]))));
  EXPECT_EQ(f.counters().uncompilable, before + 1);
  EXPECT_TRUE(f.matches(view_of(tcp_frame)));  // known types keep working
}

TEST(packet_filter, moves_keep_the_programs) {
  packet_filter a = packet_filter::compile("udp port 53");
  packet_filter b = std::move(a);
  EXPECT_TRUE(b.matches(view_of(dns_frame)));
  EXPECT_FALSE(b.matches(view_of(tcp_frame)));
}

}  // namespace
}  // namespace flower
