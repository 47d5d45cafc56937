// flow_table: initiator rules, bidirectional accounting, every expiry reason,
// eviction, flush and the memory budget. Packets are built by hand (no
// decoder) and time is injected through their timestamps.

#include "pipeline/flow_table.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace flower {
namespace {

constexpr uint8_t FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10;
constexpr uint64_t T0 = 1'700'000'000 * kNsPerSec;
constexpr uint64_t sec(uint64_t s) { return s * kNsPerSec; }

void set_addr(flow_key& k, std::array<uint8_t, 16>& dst, const std::string& text) {
  uint8_t buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) {
    k.set_v4(dst, buf);
    k.ip_version = 4;
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, text.c_str(), buf), 1) << text;
    std::memcpy(dst.data(), buf, 16);
    k.ip_version = 6;
  }
}

// Fluent builder for one decoded packet in wire order.
struct pkt {
  decoded_packet d;
  pkt(uint8_t proto, const std::string& src, uint16_t sport, const std::string& dst, uint16_t dport) {
    set_addr(d.key, d.key.addr_a, src);
    set_addr(d.key, d.key.addr_b, dst);
    d.key.port_a = sport;
    d.key.port_b = dport;
    d.key.proto = proto;
    d.ts_ns = T0;
    d.ip_bytes = 100;
    d.frame_bytes = 114;
  }
  pkt& flags(uint8_t f) { d.tcp_flags = f; return *this; }
  pkt& at(uint64_t ns) { d.ts_ns = ns; return *this; }
  pkt& bytes(uint32_t ip, uint32_t frame) { d.ip_bytes = ip; d.frame_bytes = frame; return *this; }
  pkt& vlan(uint16_t v) { d.key.vlan = v; return *this; }
  pkt& spi(uint32_t s) { d.spi = s; return *this; }
  pkt& icmp(uint8_t type, uint8_t code) { d.icmp_type_code = static_cast<uint16_t>(type << 8 | code); return *this; }
  pkt& tunnel(tunnel_kind t) { d.tunnel = t; return *this; }
  operator decoded_packet() const { return d; }
};

pkt tcp(const std::string& s, uint16_t sp, const std::string& d, uint16_t dp) { return pkt(6, s, sp, d, dp); }
pkt udp(const std::string& s, uint16_t sp, const std::string& d, uint16_t dp) { return pkt(17, s, sp, d, dp); }

struct collecting_sink : record_sink {
  std::vector<flow_record> records;
  void consume(std::span<const flow_record> r) override { records.insert(records.end(), r.begin(), r.end()); }
};

flow_table_config default_config() {
  flow_table_config c;
  c.max_flows = 1024;
  c.huge_pages = false;
  return c;
}

// A table with a sink that collects every exported record.
struct harness {
  explicit harness(flow_table_config c = default_config(), service_ports ports = service_ports::defaults())
      : table(c, std::move(ports)), out(sink, 7) {}

  void feed(const std::vector<decoded_packet>& packets) {
    table.update(packets, out);
    out.flush();
  }
  void feed(const decoded_packet& p) { feed(std::vector<decoded_packet>{p}); }
  void expire(uint64_t now) {
    table.expire(now, out);
    out.flush();
  }
  const std::vector<flow_record>& flush(end_reason r = end_reason::shutdown) {
    table.flush(r, out);
    out.flush();
    return sink.records;
  }
  std::vector<flow_record>& records() { return sink.records; }

  collecting_sink sink;
  flow_table table;
  record_buffer out;
};

std::string endpoint_a(const flow_record& r) { return address_string(r.key.addr_a, r.key.ip_version) + ":" + std::to_string(r.key.port_a); }
std::string endpoint_b(const flow_record& r) { return address_string(r.key.addr_b, r.key.ip_version) + ":" + std::to_string(r.key.port_b); }

// --- initiator rules ---------------------------------------------------------

TEST(FlowTableInitiator, SynSenderIsInitiator) {
  harness h;
  h.feed({tcp("10.0.0.9", 40000, "10.0.0.1", 5555).flags(SYN),
          tcp("10.0.0.1", 5555, "10.0.0.9", 40000).flags(SYN | ACK).at(T0 + 10),
          tcp("10.0.0.9", 40000, "10.0.0.1", 5555).flags(ACK).at(T0 + 20)});
  const auto& r = h.flush();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(endpoint_a(r[0]), "10.0.0.9:40000");
  EXPECT_EQ(endpoint_b(r[0]), "10.0.0.1:5555");
  EXPECT_EQ(r[0].fwd.packets, 2u);
  EXPECT_EQ(r[0].rev.packets, 1u);
  EXPECT_EQ(r[0].fwd.tcp_flags, SYN | ACK);
  EXPECT_EQ(r[0].rev.tcp_flags, SYN | ACK);
}

TEST(FlowTableInitiator, SynAckFirstMakesItsReceiverTheInitiator) {
  harness h;
  h.feed({tcp("10.0.0.1", 7000, "10.0.0.9", 41000).flags(SYN | ACK),
          tcp("10.0.0.9", 41000, "10.0.0.1", 7000).flags(ACK).at(T0 + 5)});
  const auto& r = h.flush();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(endpoint_a(r[0]), "10.0.0.9:41000");
  EXPECT_EQ(r[0].fwd.packets, 1u);
  EXPECT_EQ(r[0].fwd.tcp_flags, ACK);
  EXPECT_EQ(r[0].rev.tcp_flags, SYN | ACK);
}

TEST(FlowTableInitiator, LateSynReordersTheFlow) {
  harness h;  // the SYN arrives after a packet of the other side (reordering)
  h.feed({tcp("10.0.0.1", 6000, "10.0.0.9", 5000).flags(ACK).bytes(60, 74),
          tcp("10.0.0.9", 5000, "10.0.0.1", 6000).flags(SYN).bytes(40, 54).at(T0 + 1)});
  const auto& r = h.flush();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(endpoint_a(r[0]), "10.0.0.9:5000");
  EXPECT_EQ(r[0].fwd.bytes, 40u);
  EXPECT_EQ(r[0].rev.bytes, 60u);
}

TEST(FlowTableInitiator, ClientByServicePortWhenNoSyn) {
  harness h;  // the DNS answer is seen first: the client (port not a service) initiates
  h.feed(udp("10.0.0.1", 53, "10.0.0.200", 33333));
  h.feed(tcp("10.0.0.2", 443, "10.0.0.100", 50000).flags(ACK).at(T0 + 1));
  auto r = h.flush();
  ASSERT_EQ(r.size(), 2u);
  std::set<std::string> initiators{endpoint_a(r[0]), endpoint_a(r[1])};
  EXPECT_EQ(initiators, (std::set<std::string>{"10.0.0.200:33333", "10.0.0.100:50000"}));
}

TEST(FlowTableInitiator, FirstSenderWhenPortsDoNotDecide) {
  harness h;
  h.feed(udp("10.0.0.9", 40000, "10.0.0.1", 41000));  // neither is a service
  h.feed(udp("10.0.0.8", 123, "10.0.0.2", 123));      // both are
  h.feed(udp("10.0.0.1", 41000, "10.0.0.9", 40000).at(T0 + 1));
  auto r = h.flush();
  ASSERT_EQ(r.size(), 2u);
  std::map<std::string, flow_record> by_a;
  for (auto& x : r) by_a[endpoint_a(x)] = x;
  ASSERT_TRUE(by_a.count("10.0.0.9:40000"));
  ASSERT_TRUE(by_a.count("10.0.0.8:123"));
  EXPECT_EQ(by_a["10.0.0.9:40000"].fwd.packets, 1u);
  EXPECT_EQ(by_a["10.0.0.9:40000"].rev.packets, 1u);
}

TEST(FlowTableInitiator, ServicePortsAreConfigurable) {
  service_ports none;
  harness h(default_config(), none);
  h.feed(udp("10.0.0.1", 53, "10.0.0.200", 33333));
  auto r = h.flush();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(endpoint_a(r[0]), "10.0.0.1:53");  // no service ports: first sender
}

// --- accounting ----------------------------------------------------------------

TEST(FlowTable, BothDirectionsMeetInOneRecord) {
  harness h;
  h.feed({udp("2001:db8::1", 5000, "2001:db8::2", 6000).bytes(100, 118).at(T0 + 50),
          udp("2001:db8::2", 6000, "2001:db8::1", 5000).bytes(200, 218).at(T0 + 70),
          udp("2001:db8::1", 5000, "2001:db8::2", 6000).bytes(300, 318).at(T0 + 40),  // out of order
          udp("2001:db8::2", 6000, "2001:db8::1", 5000).bytes(400, 418).at(T0 + 60)});
  const auto& r = h.flush();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(endpoint_a(r[0]), "2001:db8::1:5000");
  EXPECT_EQ(r[0].fwd.packets, 2u);
  EXPECT_EQ(r[0].fwd.bytes, 400u);
  EXPECT_EQ(r[0].fwd.frame_bytes, 436u);
  EXPECT_EQ(r[0].rev.packets, 2u);
  EXPECT_EQ(r[0].rev.bytes, 600u);
  EXPECT_EQ(r[0].rev.frame_bytes, 636u);
  EXPECT_EQ(r[0].first_ns, T0 + 40);
  EXPECT_EQ(r[0].last_ns, T0 + 70);
  EXPECT_EQ(r[0].reason, end_reason::shutdown);
  EXPECT_EQ(h.table.counters().packets, 4u);
  EXPECT_EQ(h.table.counters().flows_created, 1u);
}

TEST(FlowTable, VlanDistinguishesFlows) {
  harness h;
  h.feed({udp("10.0.0.1", 1000, "10.0.0.2", 2000).vlan(10), udp("10.0.0.1", 1000, "10.0.0.2", 2000).vlan(20),
          udp("10.0.0.2", 2000, "10.0.0.1", 1000).vlan(20)});
  EXPECT_EQ(h.table.size(), 2u);
  auto r = h.flush();
  ASSERT_EQ(r.size(), 2u);
  std::map<uint16_t, uint64_t> packets;
  for (auto& x : r) packets[x.key.vlan] = x.fwd.packets + x.rev.packets;
  EXPECT_EQ(packets[10], 1u);
  EXPECT_EQ(packets[20], 2u);
}

TEST(FlowTable, FirstSpiPerDirectionTunnelAndIcmp) {
  harness h;
  h.feed({pkt(50, "10.0.0.1", 0, "10.0.0.2", 0).spi(0x1111).tunnel(tunnel_kind::gre),
          pkt(50, "10.0.0.1", 0, "10.0.0.2", 0).spi(0x2222),
          pkt(50, "10.0.0.2", 0, "10.0.0.1", 0).spi(0x3333),
          pkt(1, "10.0.0.5", 0, "10.0.0.3", 0).icmp(8, 0),
          pkt(1, "10.0.0.3", 0, "10.0.0.5", 0).icmp(0, 0)});
  auto r = h.flush();
  ASSERT_EQ(r.size(), 2u);
  for (auto& x : r) {
    if (x.key.proto == 50) {
      EXPECT_EQ(x.fwd.spi, 0x1111u);
      EXPECT_EQ(x.rev.spi, 0x3333u);
      EXPECT_EQ(x.tunnel, tunnel_kind::gre);
    } else {
      EXPECT_EQ(endpoint_a(x), "10.0.0.5:0");
      EXPECT_EQ(x.icmp_type_code, 0x0800);
      EXPECT_EQ(x.rev.packets, 1u);
    }
  }
}

// --- expiry ----------------------------------------------------------------------

TEST(FlowTableExpiry, IdleOnNextPacketStartsANewRecord) {
  harness h;  // idle 30 s
  h.feed(udp("10.0.0.1", 1000, "10.0.0.2", 2000).at(T0));
  h.feed(udp("10.0.0.2", 2000, "10.0.0.1", 1000).at(T0 + sec(31)));
  ASSERT_EQ(h.records().size(), 1u);
  EXPECT_EQ(h.records()[0].reason, end_reason::idle);
  EXPECT_EQ(h.records()[0].fwd.packets, 1u);
  EXPECT_EQ(h.records()[0].rev.packets, 0u);
  auto r = h.flush();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(endpoint_a(r[1]), "10.0.0.2:2000");  // the new flow's first sender
  EXPECT_EQ(r[1].first_ns, T0 + sec(31));
  EXPECT_EQ(h.table.counters().by_reason[static_cast<int>(end_reason::idle)], 1u);
}

TEST(FlowTableExpiry, IdleBySweep) {
  harness h;
  h.feed(udp("10.0.0.1", 1000, "10.0.0.2", 2000).at(T0));
  h.expire(T0 + sec(29));
  EXPECT_TRUE(h.records().empty());
  h.expire(T0 + sec(31));
  ASSERT_EQ(h.records().size(), 1u);
  EXPECT_EQ(h.records()[0].reason, end_reason::idle);
  EXPECT_EQ(h.table.size(), 0u);
}

TEST(FlowTableExpiry, SweepCoversTheTableWithinAboutOneSecond) {
  harness h;
  std::vector<decoded_packet> batch;
  for (uint16_t i = 0; i < 1000; ++i) batch.push_back(udp("10.0.0.1", static_cast<uint16_t>(1000 + i), "10.0.0.2", 53));
  h.feed(batch);
  h.expire(T0 + sec(1));  // first sweep, nothing due
  for (uint64_t ms = 0; ms <= 1100; ms += 10) h.expire(T0 + sec(31) + ms * 1'000'000);
  EXPECT_EQ(h.records().size(), 1000u);
  EXPECT_EQ(h.table.size(), 0u);
}

TEST(FlowTableExpiry, DisabledTimeoutsNeverExpire) {
  flow_table_config c = default_config();
  c.idle_timeout_ns = 0;
  c.active_timeout_ns = 0;
  harness h(c);
  h.feed(udp("10.0.0.1", 1000, "10.0.0.2", 2000).at(T0));
  h.expire(T0 + sec(100000));
  h.feed(udp("10.0.0.1", 1000, "10.0.0.2", 2000).at(T0 + sec(200000)));
  EXPECT_TRUE(h.records().empty());
  auto r = h.flush();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].fwd.packets, 2u);
}

TEST(FlowTableExpiry, ActiveTimeoutContinuesTheFlow) {
  flow_table_config c = default_config();
  c.active_timeout_ns = sec(60);
  harness h(c);
  for (uint64_t t = 0; t <= 100; t += 10)
    h.feed(tcp("10.0.0.9", 40000, "10.0.0.1", 80).flags(t == 0 ? SYN : ACK).bytes(100 + static_cast<uint32_t>(t), 0).at(T0 + sec(t)));
  ASSERT_EQ(h.records().size(), 1u);
  EXPECT_EQ(h.records()[0].reason, end_reason::active);
  EXPECT_EQ(h.records()[0].fwd.packets, 6u);  // t = 0..50
  auto r = h.flush();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].first_ns, T0 + sec(60));
  EXPECT_EQ(r[1].last_ns, T0 + sec(100));
  EXPECT_EQ(endpoint_a(r[1]), "10.0.0.9:40000");  // orientation kept
  EXPECT_EQ(r[0].fwd.packets + r[1].fwd.packets, 11u);
  EXPECT_EQ(r[0].fwd.bytes + r[1].fwd.bytes, 11u * 100 + 550);
  EXPECT_EQ(h.table.counters().flows_created, 1u);
}

TEST(FlowTableExpiry, ActiveTimeoutBySweepWithoutIdle) {
  flow_table_config c = default_config();
  c.idle_timeout_ns = 0;
  c.active_timeout_ns = sec(60);
  harness h(c);
  h.feed(udp("10.0.0.1", 1000, "10.0.0.2", 2000).at(T0));
  h.expire(T0 + sec(61));
  ASSERT_EQ(h.records().size(), 1u);
  EXPECT_EQ(h.records()[0].reason, end_reason::active);
  EXPECT_EQ(h.table.size(), 1u);  // continues, with an empty record
  h.feed(udp("10.0.0.2", 2000, "10.0.0.1", 1000).at(T0 + sec(70)));
  auto r = h.flush();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(endpoint_a(r[1]), "10.0.0.1:1000");  // same orientation
  EXPECT_EQ(r[1].rev.packets, 1u);
  EXPECT_EQ(r[1].first_ns, T0 + sec(70));
}

TEST(FlowTableExpiry, FinBothWaysEndsAfterLinger) {
  harness h;  // linger 2 s
  h.feed({tcp("10.0.0.9", 40000, "10.0.0.1", 80).flags(SYN).at(T0),
          tcp("10.0.0.9", 40000, "10.0.0.1", 80).flags(FIN | ACK).at(T0 + sec(1)),
          tcp("10.0.0.1", 80, "10.0.0.9", 40000).flags(FIN | ACK).at(T0 + sec(1)),
          tcp("10.0.0.9", 40000, "10.0.0.1", 80).flags(ACK).at(T0 + sec(2))});  // within linger
  EXPECT_TRUE(h.records().empty());
  h.feed(tcp("10.0.0.9", 40000, "10.0.0.1", 80).flags(ACK).at(T0 + sec(5)));  // after linger
  ASSERT_EQ(h.records().size(), 1u);
  EXPECT_EQ(h.records()[0].reason, end_reason::tcp_end);
  EXPECT_EQ(h.records()[0].fwd.packets, 3u);
  auto r = h.flush();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].fwd.packets + r[1].rev.packets, 1u);
}

TEST(FlowTableExpiry, FinOneWayIsNotAnEnd) {
  harness h;
  h.feed({tcp("10.0.0.9", 40000, "10.0.0.1", 80).flags(FIN | ACK).at(T0),
          tcp("10.0.0.9", 40000, "10.0.0.1", 80).flags(ACK).at(T0 + sec(10))});
  h.expire(T0 + sec(15));
  EXPECT_TRUE(h.records().empty());
}

TEST(FlowTableExpiry, FinBothWaysBySweep) {
  harness h;
  h.feed({tcp("10.0.0.9", 40000, "10.0.0.1", 80).flags(FIN | ACK).at(T0),
          tcp("10.0.0.1", 80, "10.0.0.9", 40000).flags(FIN | ACK).at(T0 + sec(1))});
  h.expire(T0 + sec(2));
  EXPECT_TRUE(h.records().empty());
  h.expire(T0 + sec(3) + 1);
  ASSERT_EQ(h.records().size(), 1u);
  EXPECT_EQ(h.records()[0].reason, end_reason::tcp_end);
}

// The reason is the end whose deadline came first, not the first check
// that matches: a FIN-ended flow first looked at long after both its linger
// (2 s) and the idle timeout (30 s) is still tcp_end, on a packet or in a
// sweep, so a later look (another shard layout, a later sweep slice) cannot
// change it.
TEST(FlowTableExpiry, EarliestDeadlineNamesTheReason) {
  for (bool by_packet : {true, false}) {
    harness h;
    h.feed({tcp("10.0.0.9", 40000, "10.0.0.1", 80).flags(FIN | ACK).at(T0),
            tcp("10.0.0.1", 80, "10.0.0.9", 40000).flags(FIN | ACK).at(T0 + sec(1))});
    if (by_packet)
      h.feed(tcp("10.0.0.9", 40000, "10.0.0.1", 80).flags(ACK).at(T0 + sec(100)));
    else
      h.expire(T0 + sec(100));
    ASSERT_FALSE(h.records().empty()) << by_packet;
    EXPECT_EQ(h.records()[0].reason, end_reason::tcp_end) << by_packet;
  }
  // An open flow past both its idle (last + 30 s) and active (first + 40 s)
  // deadlines: idle came first.
  flow_table_config c = default_config();
  c.active_timeout_ns = sec(40);
  harness h(c);
  h.feed({udp("10.0.0.9", 5000, "10.0.0.1", 6000).at(T0), udp("10.0.0.9", 5000, "10.0.0.1", 6000).at(T0 + sec(5))});
  h.expire(T0 + sec(60));
  ASSERT_EQ(h.records().size(), 1u);
  EXPECT_EQ(h.records()[0].reason, end_reason::idle);
}

TEST(FlowTableExpiry, RstThenNewSynReopensImmediately) {
  harness h;
  h.feed({tcp("10.0.0.9", 40000, "10.0.0.1", 80).flags(SYN).at(T0),
          tcp("10.0.0.1", 80, "10.0.0.9", 40000).flags(RST | ACK).at(T0 + 100),
          tcp("10.0.0.9", 40000, "10.0.0.1", 80).flags(SYN).at(T0 + 200)});
  ASSERT_EQ(h.records().size(), 1u);
  EXPECT_EQ(h.records()[0].reason, end_reason::tcp_end);
  EXPECT_EQ(h.records()[0].rev.tcp_flags, RST | ACK);
  auto r = h.flush();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].fwd.tcp_flags, SYN);
  EXPECT_EQ(r[1].first_ns, T0 + 200);
  EXPECT_EQ(h.table.counters().flows_created, 2u);
}

TEST(FlowTableExpiry, RstThenDataWithinLingerStays) {
  harness h;
  h.feed({tcp("10.0.0.9", 40000, "10.0.0.1", 80).flags(RST).at(T0),
          tcp("10.0.0.1", 80, "10.0.0.9", 40000).flags(ACK | PSH).at(T0 + sec(1))});
  EXPECT_TRUE(h.records().empty());
  EXPECT_EQ(h.flush().size(), 1u);
}

TEST(FlowTableExpiry, PacketCounterLimitSplitsTheRecord) {
  flow_table_config c = default_config();
  c.max_record_packets = 5;
  harness h(c);
  for (int i = 0; i < 12; ++i) h.feed(udp("10.0.0.1", 1000, "10.0.0.2", 2000).at(T0 + static_cast<uint64_t>(i)));
  auto r = h.flush();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].reason, end_reason::active);
  EXPECT_EQ(r[1].reason, end_reason::active);
  EXPECT_EQ(r[2].reason, end_reason::shutdown);
  EXPECT_EQ(r[0].fwd.packets, 5u);
  EXPECT_EQ(r[1].fwd.packets, 5u);
  EXPECT_EQ(r[2].fwd.packets, 2u);
  EXPECT_EQ(r[1].first_ns, T0 + 5);
}

// A frame octet counter ends its record when it reaches its top bit
// (2^47), before an addition could carry into the meta bits above it.
// Bogus wire lengths of 2^32 - 1 get there in 32,769 packets.
TEST(FlowTableExpiry, FrameOctetLimitSplitsTheRecordAndKeepsEveryOctet) {
  harness h;
  constexpr uint32_t kHuge = UINT32_MAX;
  constexpr uint64_t kPackets = 40000;
  std::vector<decoded_packet> batch;
  for (uint64_t i = 0; i < kPackets; ++i)
    batch.push_back(udp("10.0.0.1", 1000, "10.0.0.2", 2000).bytes(100, kHuge).at(T0 + i));
  h.feed(batch);
  const auto& r = h.flush();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].reason, end_reason::active);
  EXPECT_EQ(r[0].fwd.packets, 32769u);  // 32769 * (2^32 - 1) is the first sum >= 2^47
  EXPECT_EQ(r[0].fwd.frame_bytes, 32769ull * kHuge);
  EXPECT_EQ(r[1].fwd.packets, kPackets - 32769);
  EXPECT_EQ(r[0].fwd.frame_bytes + r[1].fwd.frame_bytes, kPackets * kHuge);
  EXPECT_EQ(r[0].fwd.bytes + r[1].fwd.bytes, kPackets * 100);
  EXPECT_EQ(r[1].first_ns, T0 + 32769);
  EXPECT_EQ(r[1].tunnel, tunnel_kind::none);  // the meta bits came through intact
}

// --- capacity --------------------------------------------------------------------

TEST(FlowTableCapacity, EvictsWhenFullAndExportsEveryFlowOnce) {
  flow_table_config c = default_config();
  c.max_flows = 64;
  harness h(c, service_ports{});
  for (uint16_t i = 0; i < 200; ++i) h.feed(udp("10.0.0.1", static_cast<uint16_t>(1000 + i), "10.0.0.2", 9999).at(T0 + i));
  EXPECT_EQ(h.table.size(), 64u);
  EXPECT_EQ(h.table.counters().evictions, 136u);
  EXPECT_EQ(h.records().size(), 136u);
  for (auto& r : h.records()) EXPECT_EQ(r.reason, end_reason::evicted);
  auto all = h.flush();
  ASSERT_EQ(all.size(), 200u);
  std::set<uint16_t> ports;
  for (auto& r : all) ports.insert(r.key.port_a);
  EXPECT_EQ(ports.size(), 200u);
  EXPECT_EQ(h.table.counters().records_exported, h.table.counters().flows_created);
}

TEST(FlowTableCapacity, EvictsTheLeastRecentlySeenOfTheSample) {
  flow_table_config c = default_config();
  c.max_flows = 16;  // the whole table is one sample
  harness h(c, service_ports{});
  for (uint16_t i = 0; i < 16; ++i) h.feed(udp("10.0.0.1", static_cast<uint16_t>(1000 + i), "10.0.0.2", 9999).at(T0 + i));
  h.feed(udp("10.0.0.1", 1000, "10.0.0.2", 9999).at(T0 + 100));  // refresh the oldest
  h.feed(udp("10.0.0.1", 2000, "10.0.0.2", 9999).at(T0 + 101));  // a new flow
  ASSERT_EQ(h.records().size(), 1u);
  EXPECT_EQ(h.records()[0].key.port_a, 1001);
  EXPECT_EQ(h.records()[0].reason, end_reason::evicted);
}

TEST(FlowTableCapacity, FlushExportsEverythingOnceAndEmptiesTheTable) {
  harness h;
  std::vector<decoded_packet> batch;
  for (uint16_t i = 0; i < 1000; ++i) batch.push_back(udp("10.1.0.1", i, "10.1.0.2", 7));
  h.feed(batch);
  EXPECT_EQ(h.table.size(), 1000u);
  EXPECT_EQ(h.flush().size(), 1000u);
  EXPECT_EQ(h.table.size(), 0u);
  EXPECT_EQ(h.flush().size(), 1000u);  // nothing more
  h.feed(batch);                       // usable again
  EXPECT_EQ(h.table.size(), 1000u);
  EXPECT_EQ(h.flush().size(), 2000u);
}

TEST(FlowTableCapacity, MemoryIsAtMost128BytesPerFlow) {
  for (uint32_t n : {1u, 2u, 3u, 100u, 1000u, 65536u, 1u << 20, 3'000'001u}) {
    flow_table_config c = default_config();
    c.max_flows = n;
    flow_table t(c, service_ports{});
    EXPECT_EQ(t.max_flows(), n);
    EXPECT_LE(t.memory_bytes(), 128ull * n + 64) << n;  // + rounding the index up to whole cache lines
  }
}

// Random churn through a small table (evictions, idle expiry, index
// deletions by backward shift): nothing is lost or counted twice.
TEST(FlowTableCapacity, ChurnConservesPackets) {
  flow_table_config c = default_config();
  c.max_flows = 200;
  c.idle_timeout_ns = 5000;
  harness h(c, service_ports{});
  std::mt19937 rng(42);
  std::map<uint16_t, uint64_t> sent;
  uint64_t t = T0;
  for (int round = 0; round < 200; ++round) {
    std::vector<decoded_packet> batch;
    for (int i = 0; i < 64; ++i) {
      const auto port = static_cast<uint16_t>(rng() % 400);
      t += rng() % 50;
      batch.push_back(udp("10.2.0.1", port, "10.2.0.2", 40000).at(t).bytes(port, 0));
      ++sent[port];
    }
    h.feed(batch);
    if (round % 3 == 0) h.expire(t);
    size_t walked = 0;
    h.table.for_each([&](const flow_record&) { ++walked; });
    ASSERT_EQ(walked, h.table.size());
  }
  auto r = h.flush();
  std::map<uint16_t, uint64_t> got;
  uint64_t bytes = 0, want_bytes = 0;
  for (auto& x : r) {
    got[x.key.port_a] += x.fwd.packets;
    bytes += x.fwd.bytes;
  }
  for (auto& [port, n] : sent) want_bytes += uint64_t{port} * n;
  EXPECT_EQ(got, sent);
  EXPECT_EQ(bytes, want_bytes);
  const auto& k = h.table.counters();
  uint64_t by_reason = 0;
  for (uint64_t v : k.by_reason) by_reason += v;
  EXPECT_EQ(by_reason, k.records_exported);
  EXPECT_EQ(k.records_exported, r.size());
  EXPECT_GT(k.evictions, 0u);
  EXPECT_GT(k.by_reason[static_cast<int>(end_reason::idle)], 0u);
}

// The index at its densest: 64 slots of 8 buckets hold up to 32 flows, so
// buckets overflow into their neighbours and deletions (idle expiry,
// eviction) shift flows back across buckets. A flow the index lost would
// come back as a second live entry with the same key (or hang the next
// deletion), so after every round each key is live at most once, and at the
// end every packet is in exactly one record.
TEST(FlowTableCapacity, DenseIndexKeepsEveryFlowReachable) {
  for (const uint32_t max_flows : {32u, 33u, 40u}) {
    flow_table_config c = default_config();
    c.max_flows = max_flows;
    c.idle_timeout_ns = 800;  // a key comes back every ~1200 ns on average
    harness h(c, service_ports{});
    std::mt19937 rng(max_flows);
    std::map<uint16_t, uint64_t> sent;
    uint64_t t = T0;
    for (int round = 0; round < 3000; ++round) {
      std::vector<decoded_packet> batch;
      const int n = static_cast<int>(rng() % 40) + 1;
      for (int i = 0; i < n; ++i) {
        const auto port = static_cast<uint16_t>(rng() % 60);  // more keys than slots: evictions too
        t += rng() % 40;
        batch.push_back(udp("10.3.0.1", port, "10.3.0.2", 40000).at(t));
        ++sent[port];
      }
      h.feed(batch);
      if (round % 2 == 0) h.expire(t);
      std::set<uint16_t> live;
      size_t walked = 0;
      h.table.for_each([&](const flow_record& r) {
        ++walked;
        EXPECT_TRUE(live.insert(r.key.port_a).second) << "port " << r.key.port_a << " is live twice, round " << round;
      });
      ASSERT_EQ(walked, h.table.size());
      ASSERT_LE(walked, max_flows);
    }
    std::map<uint16_t, uint64_t> got;
    for (const auto& r : h.flush()) got[r.key.port_a] += r.fwd.packets;
    EXPECT_EQ(got, sent) << max_flows;
    EXPECT_GT(h.table.counters().evictions, 0u);
    EXPECT_GT(h.table.counters().by_reason[static_cast<int>(end_reason::idle)], 0u);
  }
}

}  // namespace
}  // namespace flower
