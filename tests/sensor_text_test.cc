// What a person reads: a flow record as one line (the sensor's default
// output), the ledger summary on stderr and the live front end's lines.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "exporter/ledger_report.h"
#include "sensor/report.h"
#include "sensor/text_writer.h"

namespace flower {
namespace {

flow_record udp_record() {
  flow_record r;
  const uint8_t a[4] = {10, 0, 0, 1}, b[4] = {93, 184, 216, 34};
  r.key.set_v4(r.key.addr_a, a);
  r.key.set_v4(r.key.addr_b, b);
  r.key.ip_version = 4;
  r.key.proto = 17;
  r.key.port_a = 51234;
  r.key.port_b = 53;
  r.key.vlan = 7;
  r.fwd.packets = 2;
  r.rev.packets = 1;
  r.fwd.bytes = 120;
  r.rev.bytes = 300;
  r.first_ns = 1'000'000'000;
  r.last_ns = 2'234'000'000;
  r.reason = end_reason::idle;
  return r;
}

TEST(TextRecord, OneLineWithProtocolEndpointsCountersAndReason) {
  EXPECT_EQ(to_text(udp_record()),
            "UDP    10.0.0.1:51234 -> 93.184.216.34:53  vlan 7  pkts 2/1  bytes 120/300  1.234s  idle\n");
}

TEST(TextRecord, Ipv6PortsAreBracketedAndPortlessProtocolsHaveNone) {
  flow_record r = udp_record();
  r.key = flow_key{};
  r.key.ip_version = 6;
  r.key.addr_a[15] = 1;
  r.key.addr_b[0] = 0x20;
  r.key.addr_b[1] = 0x01;
  r.key.addr_b[2] = 0x0d;
  r.key.addr_b[3] = 0xb8;
  r.key.addr_b[15] = 2;
  r.key.proto = 6;
  r.key.port_a = 443;
  r.key.port_b = 50000;
  r.reason = end_reason::tcp_end;
  std::string line = to_text(r);
  EXPECT_EQ(line.rfind("TCP    [::1]:443 -> [2001:db8::2]:50000  vlan 0", 0), 0u) << line;
  EXPECT_NE(line.find("  tcp_end\n"), std::string::npos) << line;
  r.key.proto = 58;
  line = to_text(r);
  EXPECT_EQ(line.rfind("ICMPv6 ::1 -> 2001:db8::2  vlan 0", 0), 0u) << line;
  r.key.proto = 250;
  EXPECT_EQ(to_text(r).rfind("proto 250 ::1 -> 2001:db8::2", 0), 0u) << to_text(r);
}

TEST(TextRecord, TunnelIsNamed) {
  flow_record r = udp_record();
  r.tunnel = tunnel_kind::gre;
  const std::string line = to_text(r);
  EXPECT_NE(line.find("  idle  tunnel "), std::string::npos) << line;
}

TEST(TextWriter, WritesEveryRecordAndCountsThem) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  {
    text_writer w(fds[1]);
    const flow_record records[2] = {udp_record(), udp_record()};
    w.consume(records);
    w.flush();
    EXPECT_EQ(w.records_written(), 2u);
    EXPECT_EQ(w.write_errors(), 0u);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  EXPECT_EQ(out, to_text(udp_record()) + to_text(udp_record()));
}

TEST(TextWriter, AWriteErrorIsCounted) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);  // nobody reads: EPIPE (SIGPIPE ignored below)
  std::signal(SIGPIPE, SIG_IGN);
  text_writer w(fds[1]);
  const flow_record r = udp_record();
  w.consume({&r, 1});
  w.flush();
  EXPECT_EQ(w.write_errors(), 1u);
  ::close(fds[1]);
}

TEST(LedgerText, FirstLineIsTheSummaryAndLossesAreNamed) {
  drop_ledger l;
  l.received = 30;
  l.metered = 30;
  l.decode[0] = 30;
  l.flows_created = 4;
  l.records[static_cast<size_t>(end_reason::shutdown)] = 4;
  std::string text = to_text(l);
  EXPECT_EQ(text,
            "packets: 30 received, 30 metered, 0 filtered, 0 malformed, 0 unsupported\n"
            "flows: 4 created, 4 records (idle 0, active 0, tcp_end 0, shutdown 4, evicted 0)\n");
  l.received = 40;
  l.decode[static_cast<size_t>(decode_status::non_ip)] = 4;
  l.ring_full = {0, 6};
  l.source_undrained = 9;
  l.time_jumps = 1;
  text = to_text(l);
  EXPECT_NE(text.find("drops: 6 at full shard rings; not received: 0 by the capture front end, 9 left undrained at stop\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("  ring 1: 6 dropped\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("  ring 0:"), std::string::npos) << text;
  EXPECT_NE(text.find("  unsupported non_ip"), std::string::npos) << text;
  EXPECT_NE(text.find("time jumps: 1 packets"), std::string::npos) << text;
  EXPECT_EQ(text.find("DOES NOT balance"), std::string::npos) << text;
  l.metered = 29;
  EXPECT_NE(to_text(l).find("ledger: DOES NOT balance: received 40 != filtered + decode failed + ring dropped + "
                            "metered = 39\n"),
            std::string::npos) << to_text(l);
}

TEST(LiveText, XdpQueuesAndPcapCounters) {
  live_counters c;
  c.device = "eth0";
  c.front_end = capture_mode::xdp;
  c.xdp_mode = xdp_attach_mode::generic;
  c.queues.push_back({0, false, false, 10, 1, 0, 2, 3, 0, 0, 0});
  c.program.seen = 12;
  c.program.redirected = 10;
  c.program.passed = 2;
  c.program.prefiltered = 2;
  EXPECT_EQ(to_text(c),
            "live eth0: xdp\n"
            "  xdp generic: seen 12, redirected 10, passed 2 (no socket 0, prefiltered 2, sampled out 0), dropped 0\n"
            "  queue 0 generic copy: rx 10, rx_dropped 1, rx_ring_full 2, fill_ring_empty 3\n");
  live_counters p;
  p.device = "any";
  p.front_end = capture_mode::pcap;
  p.fallback_reason = "not a network interface";
  p.pcap = {5, 1, 0};
  EXPECT_EQ(to_text(p), "live any: pcap (fell back: not a network interface)\n  pcap: ps_recv 5, ps_drop 1, ps_ifdrop 0\n");
}

}  // namespace
}  // namespace flower
