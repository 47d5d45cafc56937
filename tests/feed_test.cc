// The ZeroMQ feed (docs/feed.md): the flower.v1 encodings field by field,
// the publisher over real sockets (tcp loopback and ipc), the slow-joiner
// wait, a subscriber that stops reading, gap detection in flower-sub, and
// the Python example subscriber.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "exporter/community_id.h"
#include "exporter/feed/feed_codec.h"
#include "exporter/feed/feed_publisher.h"
#include "exporter/feed/sequence_tracker.h"
#include "exporter/json_writer.h"
#include "flower/v1/feed.pb.h"

namespace flower {
namespace {

using namespace std::chrono_literals;

void set_addr(flow_record& r, std::array<uint8_t, 16>& a, const char* text) {
  uint8_t buf[16];
  if (inet_pton(AF_INET, text, buf) == 1) {
    r.key.set_v4(a, buf);
    r.key.ip_version = 4;
  } else {
    ASSERT_EQ(inet_pton(AF_INET6, text, buf), 1) << text;
    std::memcpy(a.data(), buf, 16);
    r.key.ip_version = 6;
  }
}

// A record as the engine exports it: ICMP keeps both key ports 0 and its
// type/code in icmp_type_code; SPIs only for ESP/AH.
flow_record make(uint8_t proto, const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  flow_record r;
  set_addr(r, r.key.addr_a, src);
  set_addr(r, r.key.addr_b, dst);
  r.key.proto = proto;
  r.key.port_a = sport;
  r.key.port_b = dport;
  r.fwd = {3, 180, 222, 0x02 | 0x10, 0};
  r.rev = {2, 120, 148, 0x12, 0};
  r.first_ns = 1'700'000'000'123'456'789ULL;
  r.last_ns = r.first_ns + 2'500'000'000ULL;
  r.reason = end_reason::idle;
  return r;
}

// Every kind of record: both IP versions, ICMP and ICMPv6, ESP and AH,
// each tunnel and end reason, a VLAN, counters needing all 64 bits.
std::vector<flow_record> varied_records() {
  std::vector<flow_record> v;
  v.push_back(make(6, "10.0.0.1", 51234, "93.184.216.34", 443));
  v.back().reason = end_reason::tcp_end;
  v.push_back(make(17, "2001:db8::1", 5353, "2001:db8::ffff:2", 53));
  v.back().key.vlan = 4094;
  v.back().tunnel = tunnel_kind::vxlan;
  v.push_back(make(1, "192.0.2.1", 0, "192.0.2.200", 0));
  v.back().icmp_type_code = 8 << 8;
  v.back().reason = end_reason::active;
  v.push_back(make(58, "fe80::1", 0, "ff02::1", 0));
  v.back().icmp_type_code = 135 << 8 | 1;
  v.back().tunnel = tunnel_kind::teredo;
  v.push_back(make(50, "198.51.100.7", 0, "203.0.113.9", 0));
  v.back().fwd.spi = 0xdeadbeef;
  v.back().rev.spi = 0x01020304;
  v.back().reason = end_reason::shutdown;
  v.back().tunnel = tunnel_kind::gre;
  v.push_back(make(51, "2001:db8:1::1", 0, "2001:db8:2::2", 0));
  v.back().fwd.spi = 7;
  v.back().reason = end_reason::evicted;
  v.back().tunnel = tunnel_kind::erspan;
  v.push_back(make(132, "10.1.1.1", 38412, "10.2.2.2", 36412));  // SCTP
  v.back().fwd = {UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 2, 0xff, 0};
  v.back().rev = {1ULL << 40, 1ULL << 50, 1ULL << 60, 0, 0};
  v.back().tunnel = tunnel_kind::gtp_u;
  v.push_back(make(47, "10.9.9.9", 0, "10.8.8.8", 0));
  v.back().tunnel = tunnel_kind::ip_in_ip;
  v.push_back(make(17, "10.3.3.3", 68, "10.4.4.4", 67));
  v.back().tunnel = tunnel_kind::geneve;
  v.back().first_ns = 0;
  v.back().last_ns = UINT64_MAX;
  return v;
}

void expect_same(const flow_record& a, const flow_record& b) {
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.fwd.packets, b.fwd.packets);
  EXPECT_EQ(a.fwd.bytes, b.fwd.bytes);
  EXPECT_EQ(a.fwd.frame_bytes, b.fwd.frame_bytes);
  EXPECT_EQ(a.fwd.tcp_flags, b.fwd.tcp_flags);
  EXPECT_EQ(a.fwd.spi, b.fwd.spi);
  EXPECT_EQ(a.rev.packets, b.rev.packets);
  EXPECT_EQ(a.rev.bytes, b.rev.bytes);
  EXPECT_EQ(a.rev.frame_bytes, b.rev.frame_bytes);
  EXPECT_EQ(a.rev.tcp_flags, b.rev.tcp_flags);
  EXPECT_EQ(a.rev.spi, b.rev.spi);
  EXPECT_EQ(a.first_ns, b.first_ns);
  EXPECT_EQ(a.last_ns, b.last_ns);
  EXPECT_EQ(a.icmp_type_code, b.icmp_type_code);
  EXPECT_EQ(a.tunnel, b.tunnel);
  EXPECT_EQ(a.reason, b.reason);
}

feed_envelope test_envelope() {
  feed_envelope env;
  env.sensor_id = "sensor \"one\"";  // needs escaping in JSON
  env.run_id = 0xfedcba9876543210ULL;
  env.topic = std::string(kTopicFlow);
  env.seq = 42;
  env.record_offset = 1'000'000;
  return env;
}

class FeedEncoding : public ::testing::TestWithParam<feed_format> {};

TEST_P(FeedEncoding, RoundTripsEveryFieldOfEveryRecord) {
  const std::vector<flow_record> records = varied_records();
  flow_encoder encoder(GetParam());
  feed_envelope env = test_envelope();
  std::string payload;
  encoder.encode(env, records, payload);
  EXPECT_EQ(env.interval_start_ns, 0u);           // the earliest first_ns
  EXPECT_EQ(env.interval_end_ns, UINT64_MAX);     // the latest last_ns
  EXPECT_NE(env.sent_ns, 0u);

  const feed_message m = decode_feed_message(payload);
  EXPECT_EQ(m.format, GetParam());
  EXPECT_EQ(m.envelope.schema_version, kFeedSchemaVersion);
  EXPECT_EQ(m.envelope.sensor_id, env.sensor_id);
  EXPECT_EQ(m.envelope.run_id, env.run_id);
  EXPECT_EQ(m.envelope.topic, "flow");
  EXPECT_EQ(m.envelope.seq, 42u);
  EXPECT_EQ(m.envelope.record_offset, 1'000'000u);
  EXPECT_EQ(m.envelope.interval_start_ns, env.interval_start_ns);
  EXPECT_EQ(m.envelope.interval_end_ns, env.interval_end_ns);
  EXPECT_EQ(m.envelope.sent_ns, env.sent_ns);
  ASSERT_EQ(m.records.size(), records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    SCOPED_TRACE(to_json(records[i]));
    expect_same(m.records[i].record, records[i]);
    EXPECT_EQ(m.records[i].flow_id, flow_id_of(records[i]));
    EXPECT_EQ(m.records[i].community_id, community_id(records[i]));
    EXPECT_EQ(to_json(m.records[i].record), to_json(records[i]));  // what flower-sub prints
  }
}

TEST_P(FeedEncoding, EncoderReuseDoesNotLeakFieldsBetweenBatches) {
  // An ESP record, then an ICMP one in the same slot: no stale spi.
  std::vector<flow_record> all = varied_records();
  flow_encoder encoder(GetParam());
  std::string payload;
  feed_envelope env = test_envelope();
  encoder.encode(env, std::span(&all[4], 1), payload);
  encoder.encode(env, std::span(&all[2], 1), payload);
  const feed_message m = decode_feed_message(payload);
  ASSERT_EQ(m.records.size(), 1u);
  expect_same(m.records[0].record, all[2]);
}

INSTANTIATE_TEST_SUITE_P(Both, FeedEncoding, ::testing::Values(feed_format::protobuf, feed_format::json),
                         [](const auto& p) { return std::string(name_of(p.param)); });

// The protobuf payload read with the generated classes, as any subscriber
// would: each field by its schema name, and every schema field produced.
TEST(FeedProtobuf, EveryFieldOfTheSchemaCarriesItsValue) {
  const std::vector<flow_record> records = varied_records();
  flow_encoder encoder(feed_format::protobuf);
  feed_envelope env = test_envelope();
  std::string payload;
  encoder.encode(env, records, payload);
  ASSERT_EQ(payload.front(), '\x0a');  // the envelope first: the encoding marker
  v1::FeedMessage m;
  ASSERT_TRUE(m.ParseFromString(payload));
  ASSERT_EQ(m.payload_case(), v1::FeedMessage::kFlow);
  ASSERT_EQ(m.flow().records_size(), static_cast<int>(records.size()));

  const v1::FlowRecord& tcp = m.flow().records(0);
  EXPECT_EQ(tcp.proto(), 6u);
  EXPECT_EQ(tcp.ip_version(), 4u);
  EXPECT_EQ(tcp.src_addr(), std::string("\x0a\x00\x00\x01", 4));
  EXPECT_EQ(tcp.dst_addr(), std::string("\x5d\xb8\xd8\x22", 4));
  EXPECT_EQ(tcp.src_port(), 51234u);
  EXPECT_EQ(tcp.dst_port(), 443u);
  EXPECT_EQ(tcp.vlan(), 0u);
  EXPECT_EQ(tcp.packets(), 3u);
  EXPECT_EQ(tcp.bytes(), 180u);
  EXPECT_EQ(tcp.frame_bytes(), 222u);
  EXPECT_EQ(tcp.rev_packets(), 2u);
  EXPECT_EQ(tcp.rev_bytes(), 120u);
  EXPECT_EQ(tcp.rev_frame_bytes(), 148u);
  EXPECT_EQ(tcp.tcp_flags(), 0x12u);
  EXPECT_EQ(tcp.rev_tcp_flags(), 0x12u);
  EXPECT_EQ(tcp.first_ns(), records[0].first_ns);
  EXPECT_EQ(tcp.last_ns(), records[0].last_ns);
  EXPECT_EQ(tcp.end_reason(), v1::END_REASON_TCP_END);
  EXPECT_FALSE(tcp.has_icmp_type());
  EXPECT_FALSE(tcp.has_spi());
  EXPECT_EQ(tcp.tunnel(), v1::TUNNEL_NONE);
  EXPECT_EQ(tcp.community_id(), community_id(records[0]));
  EXPECT_EQ(tcp.flow_id(), flow_id_of(records[0]));

  const v1::FlowRecord& v6 = m.flow().records(1);
  EXPECT_EQ(v6.src_addr().size(), 16u);
  EXPECT_EQ(v6.vlan(), 4094u);
  EXPECT_EQ(v6.tunnel(), v1::TUNNEL_VXLAN);

  const v1::FlowRecord& icmp = m.flow().records(2);
  EXPECT_EQ(icmp.src_port(), 0u);
  EXPECT_EQ(icmp.dst_port(), 8u << 8);
  ASSERT_TRUE(icmp.has_icmp_type());
  EXPECT_EQ(icmp.icmp_type(), 8u);
  EXPECT_EQ(icmp.icmp_code(), 0u);
  EXPECT_EQ(icmp.end_reason(), v1::END_REASON_ACTIVE);

  const v1::FlowRecord& esp = m.flow().records(4);
  ASSERT_TRUE(esp.has_spi());
  EXPECT_EQ(esp.spi(), 0xdeadbeefu);
  EXPECT_EQ(esp.rev_spi(), 0x01020304u);
  EXPECT_FALSE(esp.has_icmp_type());

  // Every field the schema declares is present in some record (proto3
  // leaves zero scalars out, so use the records whose values are not zero).
  std::set<std::string> seen;
  for (const v1::FlowRecord& r : m.flow().records()) {
    std::vector<const google::protobuf::FieldDescriptor*> fields;
    r.GetReflection()->ListFields(r, &fields);
    for (const auto* f : fields) seen.insert(f->name());
  }
  const auto* d = v1::FlowRecord::descriptor();
  for (int i = 0; i < d->field_count(); ++i) EXPECT_TRUE(seen.count(d->field(i)->name())) << d->field(i)->name();
}

// The JSON encoding's records have json_writer's fields in its order, and
// flow_id last.
TEST(FeedJson, RecordsAreFlowerSensorJsonPlusFlowId) {
  const std::vector<flow_record> records = varied_records();
  flow_encoder encoder(feed_format::json);
  feed_envelope env = test_envelope();
  std::string payload;
  encoder.encode(env, records, payload);
  ASSERT_EQ(payload.front(), '{');
  for (const flow_record& r : records) {
    std::string expected = to_json(r);
    expected.pop_back();
    expected += ",\"flow_id\":" + std::to_string(flow_id_of(r)) + "}";
    EXPECT_NE(payload.find(expected), std::string::npos) << expected;
  }
}

TEST(FeedDecode, RejectsWhatIsNeitherEncoding) {
  EXPECT_THROW(decode_feed_message(""), feed_decode_error);
  EXPECT_THROW(decode_feed_message("hello"), feed_decode_error);
  EXPECT_THROW(decode_feed_message("{\"flow\":{\"records\":[]}}"), feed_decode_error);  // no envelope
  EXPECT_THROW(decode_feed_message(std::string("\x0a\xff\xff", 3)), feed_decode_error);   // truncated
  // A record whose address length does not fit its IP version.
  v1::FeedMessage m;
  m.mutable_envelope()->set_topic("flow");
  v1::FlowRecord* r = m.mutable_flow()->add_records();
  r->set_ip_version(4);
  r->set_src_addr(std::string(16, '\0'));
  r->set_dst_addr(std::string(4, '\0'));
  r->set_end_reason(v1::END_REASON_IDLE);
  EXPECT_THROW(decode_feed_message(m.SerializeAsString()), feed_decode_error);
}

TEST(FeedStats, CarriesTheLedgerInBothEncodings) {
  feed_stats s;
  s.ledger.received = 1000;
  s.ledger.filtered = 10;
  s.ledger.metered = 990;
  s.ledger.records[static_cast<size_t>(end_reason::idle)] = 7;
  s.ledger.exporter_dropped = 3;
  s.ledger.ring_full = {1, 2};
  s.feed.records_sent = 5;
  s.feed.queue_dropped_records = 2;
  s.feed.hwm_dropped_records = 1;
  size_t bad = 0;  // the first malformed reason
  while (kDecodeStatusCategory[bad] != status_category::malformed) ++bad;
  s.ledger.decode[bad] = 5;
  const std::string bad_name(kDecodeStatusNames[bad]);
  s.rates.received_per_s = 250.5;
  s.queues = {{0, 600, 1}, {1, 400, 0}};
  for (feed_format f : {feed_format::protobuf, feed_format::json}) {
    SCOPED_TRACE(name_of(f));
    feed_envelope env;
    env.sensor_id = "s";
    env.topic = std::string(kTopicStats);
    env.seq = 3;
    std::string payload;
    encode_stats(f, env, s, payload);
    const feed_message m = decode_feed_message(payload);
    EXPECT_EQ(m.envelope.topic, "stats");
    EXPECT_EQ(m.envelope.seq, 3u);
    const nlohmann::json j = nlohmann::json::parse(m.body_json);
    const nlohmann::json& st = j.at("stats");
    // Protobuf's JSON mapping prints 64-bit integers as strings.
    auto num = [](const nlohmann::json& v) {
      return v.is_string() ? std::stoull(v.get<std::string>()) : v.get<uint64_t>();
    };
    EXPECT_EQ(num(st.at("ledger").at("received")), 1000u);
    EXPECT_EQ(num(st.at("ledger").at("flows").at("idle")), 7u);
    EXPECT_EQ(num(st.at("ledger").at("output").at("exporter_dropped")), 3u);
    EXPECT_EQ(num(st.at("ledger").at("ring_dropped").at("total")), 3u);
    EXPECT_EQ(st.at("ledger").at("conserved").get<bool>(), false);  // 1000 != 10 + 990 + 3
    EXPECT_EQ(num(st.at("feed").at("export_dropped")), 3u);
    const nlohmann::json& malformed = st.at("ledger").at("malformed");
    EXPECT_EQ(num(malformed.at("total")), 5u);
    if (f == feed_format::json) {
      EXPECT_EQ(num(malformed.at(bad_name)), 5u);  // the --stats-json object
    } else {
      uint64_t found = 0;
      for (const auto& r : malformed.at("reasons"))
        if (r.at("reason") == bad_name) found = num(r.at("packets"));
      EXPECT_EQ(found, 5u);
    }
    EXPECT_DOUBLE_EQ(st.at("rates").at("received_per_s").get<double>(), 250.5);
    EXPECT_EQ(num(st.at("queues").at(1).at("received")), 400u);
  }
}

TEST(SequenceTracker, ReportsGapsRestartsAndLateJoins) {
  sequence_tracker t;
  feed_envelope e;
  e.sensor_id = "a";
  e.topic = "flow";
  e.run_id = 1;
  auto at = [&](uint64_t seq, uint64_t offset) {
    e.seq = seq;
    e.record_offset = offset;
    return e;
  };
  EXPECT_EQ(t.observe(at(5, 400), 100).kind, sequence_event::joined);  // late: not a loss
  EXPECT_EQ(t.observe(at(6, 500), 100).kind, sequence_event::in_order);
  sequence_event g = t.observe(at(9, 830), 10);                          // 7 and 8 lost: 330 records
  EXPECT_EQ(g.kind, sequence_event::gap);
  EXPECT_EQ(g.first_lost, 7u);
  EXPECT_EQ(g.last_lost, 8u);
  EXPECT_EQ(g.lost_messages, 2u);
  EXPECT_EQ(g.lost_records, 230u);
  EXPECT_EQ(t.observe(at(9, 830), 10).kind, sequence_event::repeated);
  EXPECT_EQ(t.observe(at(10, 840), 10).kind, sequence_event::in_order);
  e.run_id = 2;                                                           // restarted; its message 1 lost
  sequence_event r = t.observe(at(2, 50), 10);
  EXPECT_EQ(r.kind, sequence_event::restarted);
  EXPECT_EQ(r.lost_messages, 1u);
  EXPECT_EQ(r.lost_records, 50u);
  e.sensor_id = "b";                                                      // another stream entirely
  EXPECT_EQ(t.observe(at(1, 0), 1).kind, sequence_event::joined);
  const stream_totals s = t.totals();
  EXPECT_EQ(s.messages, 7u);
  EXPECT_EQ(s.lost_messages, 3u);
  EXPECT_EQ(s.lost_records, 280u);
  EXPECT_EQ(s.gaps, 2u);
  EXPECT_EQ(s.restarts, 1u);
  EXPECT_EQ(s.repeated, 1u);
}

TEST(CollectorEndpoint, DefaultsThePortAndKeepsIpv6Brackets) {
  EXPECT_EQ(collector_endpoint("server"), "tcp://server:5557");
  EXPECT_EQ(collector_endpoint("10.0.0.5:6000"), "tcp://10.0.0.5:6000");
  EXPECT_EQ(collector_endpoint("[2001:db8::5]"), "tcp://[2001:db8::5]:5557");
  EXPECT_EQ(collector_endpoint("[2001:db8::5]:7"), "tcp://[2001:db8::5]:7");
  EXPECT_THROW(collector_endpoint("2001:db8::5"), std::invalid_argument);
  EXPECT_THROW(collector_endpoint("host:0"), std::invalid_argument);
  EXPECT_THROW(collector_endpoint("host:70000"), std::invalid_argument);
  EXPECT_THROW(collector_endpoint(":80"), std::invalid_argument);
}

// --- real sockets -----------------------------------------------------------

std::string ipc_path(const char* name) {
  return "/tmp/flower-feed-test-" + std::to_string(::getpid()) + "-" + name;
}

std::string ipc_endpoint(const char* name) { return "ipc://" + ipc_path(name); }

// libzmq may leave a bound ipc socket's file behind: remove ours at the end.
class remove_ipc_files : public ::testing::Environment {
 public:
  void TearDown() override {
    const std::string prefix = "flower-feed-test-" + std::to_string(::getpid()) + "-";
    for (const auto& e : std::filesystem::directory_iterator("/tmp"))
      if (e.path().filename().string().rfind(prefix, 0) == 0) std::filesystem::remove(e.path());
  }
};
const auto* const kRemoveIpcFiles = ::testing::AddGlobalTestEnvironment(new remove_ipc_files);

// Records numbered by first_ns, so order and exactly-once are checkable.
std::vector<flow_record> numbered(size_t n, uint64_t from = 0) {
  std::vector<flow_record> v(n, make(6, "10.0.0.1", 1000, "10.0.0.2", 80));
  for (size_t i = 0; i < n; ++i) {
    v[i].first_ns = from + i;
    v[i].last_ns = from + i + 1;
    v[i].key.port_a = static_cast<uint16_t>(1024 + (from + i) % 60000);
  }
  return v;
}

// A SUB socket on the publisher's first endpoint, subscribed to "flow",
// with receive high-water mark `hwm` (0 = none).
zmq::socket_t flow_subscriber(zmq::context_t& ctx, const feed_publisher& pub, int hwm) {
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::rcvhwm, hwm);
  sub.set(zmq::sockopt::subscribe, "flow");
  sub.connect(pub.bound_endpoints()[0]);
  return sub;
}

struct received {
  std::vector<feed_message> messages;
  size_t records = 0;
};

// Reads "flow" messages until `want` records arrived or `timeout` passed.
received subscribe_and_read(zmq::socket_t& sub, size_t want, std::chrono::milliseconds timeout) {
  received out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  sub.set(zmq::sockopt::rcvtimeo, 100);
  while (out.records < want && std::chrono::steady_clock::now() < deadline) {
    zmq::message_t topic, payload;
    if (!sub.recv(topic)) continue;
    EXPECT_TRUE(topic.more());
    EXPECT_TRUE(sub.recv(payload));
    EXPECT_EQ(topic.to_string_view(), "flow");
    out.messages.push_back(decode_feed_message(payload.to_string_view()));
    out.records += out.messages.back().records.size();
  }
  return out;
}

struct delivery_case {
  const char* name;
  bool ipc;
  feed_format format;
};

class FeedDelivery : public ::testing::TestWithParam<delivery_case> {};

TEST_P(FeedDelivery, EveryRecordExactlyOnceInOrderWithConsecutiveSequenceNumbers) {
  feed_options o;
  o.bind = {GetParam().ipc ? ipc_endpoint(GetParam().name) : "tcp://127.0.0.1:*"};
  o.format = GetParam().format;
  o.sensor_id = "delivery";
  o.batch_records = 500;
  feed_publisher pub(o);
  ASSERT_EQ(pub.bound_endpoints().size(), 1u);

  zmq::context_t ctx(1);
  zmq::socket_t sub = flow_subscriber(ctx, pub, 0);  // this test checks delivery, not drops
  ASSERT_EQ(pub.wait_subscribers(1, 10s), 1u);

  // Batches of uneven sizes, as the engine's record merger hands them over.
  const size_t total = 30'000;
  const std::vector<flow_record> all = numbered(total);
  size_t at = 0;
  for (size_t k = 1; at < total; ++k) {
    const size_t n = std::min(total - at, (k * 97) % 1500 + 1);
    pub.consume(std::span(all).subspan(at, n));
    at += n;
    if (k % 8 == 0) std::this_thread::sleep_for(1ms);  // let the sender keep up: this test wants no drops
  }
  received got = subscribe_and_read(sub, total, 20s);
  pub.close();
  const feed_counters c = pub.counters();
  ASSERT_EQ(c.export_dropped(), 0u) << "queue " << c.queue_dropped_records << ", hwm " << c.hwm_dropped_records;
  EXPECT_EQ(c.records_sent, total);

  ASSERT_EQ(got.records, total);
  uint64_t expect_seq = 1, expect_offset = 0, next = 0;
  for (const feed_message& m : got.messages) {
    EXPECT_EQ(m.envelope.sensor_id, "delivery");
    EXPECT_EQ(m.envelope.run_id, pub.run_id());
    EXPECT_EQ(m.envelope.seq, expect_seq++);
    EXPECT_EQ(m.envelope.record_offset, expect_offset);
    EXPECT_LE(m.records.size(), 500u);
    expect_offset += m.records.size();
    for (const feed_record& r : m.records) {
      ASSERT_EQ(r.record.first_ns, next) << "out of order or duplicated";
      expect_same(r.record, all[next]);
      ++next;
    }
  }
  EXPECT_EQ(c.messages_sent, got.messages.size());
}

INSTANTIATE_TEST_SUITE_P(
    Sockets, FeedDelivery,
    ::testing::Values(delivery_case{"tcp_protobuf", false, feed_format::protobuf},
                      delivery_case{"tcp_json", false, feed_format::json},
                      delivery_case{"ipc_protobuf", true, feed_format::protobuf}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(FeedPublisher, ConnectModeReachesACollectorThatBinds) {
  zmq::context_t ctx(1);
  zmq::socket_t collector(ctx, zmq::socket_type::sub);
  collector.set(zmq::sockopt::linger, 0);
  collector.set(zmq::sockopt::subscribe, "");
  collector.bind("tcp://127.0.0.1:*");
  const std::string endpoint = collector.get(zmq::sockopt::last_endpoint);

  feed_options o;
  o.connect = {endpoint};
  feed_publisher pub(o);
  // A binding SUB takes in a new connection (and sends its subscriptions on
  // it) only while its owner calls into it: read from the start, as a
  // collector does.
  received got;
  std::thread reader([&] { got = subscribe_and_read(collector, 100, 10s); });
  EXPECT_EQ(pub.wait_subscribers(1, 10s), 1u);  // subscribed to "": covers flow
  const std::vector<flow_record> all = numbered(100);
  pub.consume(all);
  reader.join();
  EXPECT_EQ(got.records, 100u);
  EXPECT_EQ(pub.sensor_id(), default_sensor_id());
}

TEST(FeedPublisher, WaitsForAFlowSubscriberOnly) {
  feed_options o;
  o.bind = {"tcp://127.0.0.1:*"};
  feed_publisher pub(o);
  EXPECT_EQ(pub.wait_subscribers(1, 50ms), 0u);  // nobody: returns at the timeout

  zmq::context_t ctx(1);
  zmq::socket_t stats_only(ctx, zmq::socket_type::sub);
  stats_only.set(zmq::sockopt::linger, 0);
  stats_only.set(zmq::sockopt::subscribe, "stats");
  stats_only.connect(pub.bound_endpoints()[0]);
  EXPECT_EQ(pub.wait_subscribers(1, 300ms), 0u);  // "stats" does not cover "flow"

  std::thread late([&] {
    std::this_thread::sleep_for(100ms);
    zmq::socket_t sub(ctx, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::subscribe, "fl");  // a prefix of "flow" covers it
    sub.connect(pub.bound_endpoints()[0]);
    std::this_thread::sleep_for(500ms);
  });
  EXPECT_EQ(pub.wait_subscribers(1, 10s), 1u);
  late.join();
  // The subscriber is gone: its unsubscription is counted.
  for (int i = 0; i < 100 && pub.counters().subscribers != 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(pub.counters().subscribers, 0u);
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// A subscriber that stops reading: the publisher refuses at its high-water
// mark and drops queued batches, counts every record it lost, consume()
// keeps returning, and memory stays bounded by the queue and the HWM.
TEST(FeedPublisher, StalledSubscriberCostsCountedDropsNotAStallOrMemory) {
  feed_options o;
  o.bind = {ipc_endpoint("stalled")};
  o.queue_records = 4096;
  o.batch_records = 256;
  o.send_hwm = 8;
  o.linger_ms = 100;
  feed_publisher pub(o);

  zmq::context_t ctx(1);
  zmq::socket_t sub = flow_subscriber(ctx, pub, 8);
  ASSERT_EQ(pub.wait_subscribers(1, 10s), 1u);
  // ... and never reads.

  const std::vector<flow_record> batch = numbered(512);
  const long rss_before = rss_kib();
  // At least 2M records (~270 MB if anything kept them all), and on until
  // the socket has refused once: on a loaded machine (ctest -j, sanitizers)
  // the sender may not have filled the pipes within the first 2M.
  const size_t min_batches = 4000;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  size_t batches = 0;
  for (; batches < min_batches ||
         (pub.counters().hwm_dropped_messages == 0 && std::chrono::steady_clock::now() < deadline);
       ++batches) {
    pub.consume(batch);
    // Pauses let the sender fill the pipes to the high-water mark (without
    // them the queue alone would refuse nearly everything).
    if (batches % 20 == 0) std::this_thread::sleep_for(1ms);
  }
  const long rss_after = rss_kib();
  pub.close();

  const feed_counters c = pub.counters();
  const uint64_t total = batches * batch.size();
  EXPECT_EQ(c.records_queued + c.queue_dropped_records, total);
  EXPECT_EQ(c.records_sent + c.hwm_dropped_records, c.records_queued);  // close() sent or counted the rest
  EXPECT_EQ(c.queue_dropped_records % batch.size(), 0u) << "a full queue drops whole batches";
  EXPECT_GT(c.hwm_dropped_messages, 0u) << "the socket never refused: the subscriber was not stalled";
  EXPECT_GT(c.export_dropped(), total / 2);
  EXPECT_LT(c.records_sent, total / 2);
  EXPECT_LT(rss_after - rss_before, 64 * 1024) << "KiB grown while queuing " << total << " records";
}

TEST(FeedPublisher, WaitWhenFullLosesNothingToASlowReader) {
  feed_options o;
  o.bind = {ipc_endpoint("wait")};
  o.queue_records = 1024;
  o.batch_records = 128;
  o.send_hwm = 4;
  o.wait_when_full = true;
  feed_publisher pub(o);

  zmq::context_t ctx(1);
  zmq::socket_t sub = flow_subscriber(ctx, pub, 4);
  ASSERT_EQ(pub.wait_subscribers(1, 10s), 1u);

  const size_t total = 20'000;
  received got;
  std::thread reader([&] {
    // Slow: a pause every few messages, far behind the producer.
    zmq::socket_t& s = sub;
    s.set(zmq::sockopt::rcvtimeo, 100);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (got.records < total && std::chrono::steady_clock::now() < deadline) {
      zmq::message_t topic, payload;
      if (!s.recv(topic)) continue;
      (void)s.recv(payload);
      got.messages.push_back(decode_feed_message(payload.to_string_view()));
      got.records += got.messages.back().records.size();
      if (got.messages.size() % 16 == 0) std::this_thread::sleep_for(2ms);
    }
  });
  const std::vector<flow_record> all = numbered(total);
  for (size_t at = 0; at < total; at += 1000) pub.consume(std::span(all).subspan(at, 1000));
  reader.join();
  pub.close();
  EXPECT_EQ(pub.counters().export_dropped(), 0u);
  EXPECT_EQ(got.records, total);
}

// A live sensor's publisher drops when it cannot keep up, until the sensor
// stops: then the flows still open leave in one burst far larger than the
// queue, and wait_from_now_on() makes it wait for room instead.
TEST(FeedPublisher, WaitFromNowOnLosesNothingOfTheFinalBurst) {
  feed_options o;
  o.bind = {ipc_endpoint("stopburst")};
  o.queue_records = 1024;
  o.batch_records = 128;
  o.send_hwm = 4;
  o.wait_when_full = false;  // live settings
  feed_publisher pub(o);

  zmq::context_t ctx(1);
  zmq::socket_t sub = flow_subscriber(ctx, pub, 4);
  ASSERT_EQ(pub.wait_subscribers(1, 10s), 1u);

  const size_t total = 50'000;  // the burst: 50 queues' worth
  received got;
  std::thread reader([&] { got = subscribe_and_read(sub, total, 30s); });
  pub.wait_from_now_on();
  const std::vector<flow_record> all = numbered(total);
  for (size_t at = 0; at < total; at += 1000) pub.consume(std::span(all).subspan(at, 1000));
  reader.join();
  pub.close();
  EXPECT_EQ(pub.counters().export_dropped(), 0u);
  EXPECT_EQ(got.records, total);
}

TEST(FeedPublisher, PublishesStatsWithItsOwnCounters) {
  feed_options o;
  o.bind = {ipc_endpoint("stats")};
  o.format = feed_format::json;
  feed_publisher pub(o);
  zmq::context_t ctx(1);
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect(pub.bound_endpoints()[0]);
  ASSERT_EQ(pub.wait_subscribers(1, 10s), 1u);
  pub.consume(numbered(10));
  drop_ledger l;
  l.received = l.metered = 77;
  pub.publish_stats(l);
  sub.set(zmq::sockopt::rcvtimeo, 5000);
  std::vector<feed_message> got;
  for (int i = 0; i < 2; ++i) {
    zmq::message_t topic, payload;
    ASSERT_TRUE(sub.recv(topic));
    ASSERT_TRUE(sub.recv(payload));
    got.push_back(decode_feed_message(payload.to_string_view()));
    EXPECT_EQ(got.back().envelope.topic, topic.to_string_view());
  }
  ASSERT_EQ(got[1].envelope.topic, "stats");  // after the records queued before it
  EXPECT_EQ(got[1].envelope.seq, 1u);
  EXPECT_LE(got[1].envelope.interval_start_ns, got[1].envelope.interval_end_ns);
  const auto j = nlohmann::json::parse(got[1].body_json);
  EXPECT_EQ(j.at("stats").at("ledger").at("received").get<uint64_t>(), 77u);
  EXPECT_EQ(j.at("stats").at("feed").at("subscribers").get<uint64_t>(), 1u);
}

TEST(FeedPublisher, BadEndpointThrowsNamingIt) {
  feed_options o;
  o.bind = {"tcp://256.1.1.1:5556"};
  try {
    feed_publisher pub(o);
    FAIL() << "bound an impossible address";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("tcp://256.1.1.1:5556"), std::string::npos) << e.what();
  }
  EXPECT_THROW(feed_publisher(feed_options{}), std::invalid_argument);
}

// --- flower-sub and the Python example (child processes) ----------------------

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct child_result {
  int status = -1;
  std::string out;
  std::string err;
};

// Runs `command` through the shell in the background; finish() collects it.
class child {
 public:
  explicit child(const std::string& command) {
    const std::string base = "/tmp/flower-feed-test-" + std::to_string(::getpid()) + "-" + std::to_string(++serial_);
    out_ = base + ".out";
    err_ = base + ".err";
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string full = command + " >" + out_ + " 2>" + err_;
      ::execl("/bin/sh", "sh", "-c", full.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  child_result finish() {
    child_result r;
    ::waitpid(pid_, &r.status, 0);
    r.out = slurp(out_);
    r.err = slurp(err_);
    std::remove(out_.c_str());
    std::remove(err_.c_str());
    return r;
  }

 private:
  static inline int serial_ = 0;
  pid_t pid_ = -1;
  std::string out_, err_;
};

// A hand-driven XPUB (not feed_publisher) that can skip a sequence number.
struct raw_publisher {
  zmq::context_t ctx{1};
  zmq::socket_t socket{ctx, zmq::socket_type::xpub};
  flow_encoder encoder{feed_format::protobuf};
  feed_envelope env;

  explicit raw_publisher(const std::string& connect_to) {
    socket.set(zmq::sockopt::linger, 2000);
    socket.connect(connect_to);
    env.sensor_id = "gappy";
    env.run_id = 99;
    env.topic = std::string(kTopicFlow);
  }
  bool wait_for_subscription(std::chrono::milliseconds timeout) {
    socket.set(zmq::sockopt::rcvtimeo, static_cast<int>(timeout.count()));
    zmq::message_t m;
    return socket.recv(m).has_value() && m.size() > 0 && static_cast<const char*>(m.data())[0] == 1;
  }
  void send(uint64_t seq, uint64_t offset, std::span<const flow_record> records) {
    env.seq = seq;
    env.record_offset = offset;
    std::string payload;
    encoder.encode(env, records, payload);
    socket.send(zmq::str_buffer("flow"), zmq::send_flags::sndmore);
    socket.send(zmq::buffer(payload));
  }
};

TEST(FlowerSub, ReportsADeliberatelyDroppedMessage) {
  const std::string endpoint = ipc_endpoint("sub-gap");
  child sub(std::string(FLOWER_BINARY_DIR) + "/bin/flower-sub --bind " + endpoint +
            " --json --count 30 --timeout 20");
  raw_publisher pub(endpoint);
  ASSERT_TRUE(pub.wait_for_subscription(10s)) << "flower-sub never subscribed";
  const std::vector<flow_record> all = numbered(40);
  pub.send(1, 0, std::span(all).subspan(0, 10));
  // Message 2 (records 10..19) is "dropped": never sent.
  pub.send(3, 20, std::span(all).subspan(20, 10));
  pub.send(4, 30, std::span(all).subspan(30, 10));
  const child_result r = sub.finish();
  ASSERT_TRUE(WIFEXITED(r.status)) << r.err;
  EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.err;
  EXPECT_NE(r.err.find("gap in gappy/flow: lost messages 2..2 (1 messages, 10 records)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("received 30 records in 3 messages"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("lost 1 messages (10 records) in 1 gaps"), std::string::npos) << r.err;
  std::string expected;
  for (size_t i : {0, 20, 30})
    for (size_t k = i; k < i + 10; ++k) expected += to_json(all[k]) + "\n";
  EXPECT_EQ(r.out, expected);
}

TEST(FlowerSub, ReportsARestartedSensorWithoutCountingItLost) {
  // A sensor that restarts (a new run_id) reporting to a collector that binds.
  const std::string endpoint = ipc_endpoint("sub-restart");
  child sub(std::string(FLOWER_BINARY_DIR) + "/bin/flower-sub --bind " + endpoint + " --json --count 20 --timeout 20");
  const std::vector<flow_record> all = numbered(20);
  uint64_t first_run = 0;
  for (size_t run = 0; run < 2; ++run) {
    feed_options o;
    o.connect = {endpoint};
    o.sensor_id = "restarting";
    feed_publisher pub(o);
    if (run == 0) first_run = pub.run_id();
    else EXPECT_NE(pub.run_id(), first_run);
    ASSERT_EQ(pub.wait_subscribers(1, 10s), 1u);
    pub.consume(std::span(all).subspan(run * 10, 10));
    pub.close();
  }
  const child_result r = sub.finish();
  EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.err;
  EXPECT_NE(r.err.find("restarting/flow: the sensor restarted"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("lost 0 messages (0 records) in 0 gaps; 1 restarts"), std::string::npos) << r.err;
  std::string expected;
  for (const flow_record& rec : all) expected += to_json(rec) + "\n";
  EXPECT_EQ(r.out, expected);
}

TEST(FlowerSub, ALateJoinerIsToldWhereItJoinedNotThatItLostMessages) {
  feed_options o;
  o.bind = {ipc_endpoint("sub-late")};
  o.sensor_id = "early";
  feed_publisher pub(o);
  const std::vector<flow_record> all = numbered(30);
  pub.consume(std::span(all).subspan(0, 10));  // messages 1 and 2 go to nobody
  for (int i = 0; i < 500 && pub.counters().messages_sent < 1; ++i) std::this_thread::sleep_for(2ms);
  pub.consume(std::span(all).subspan(10, 10));
  for (int i = 0; i < 500 && pub.counters().messages_sent < 2; ++i) std::this_thread::sleep_for(2ms);
  ASSERT_EQ(pub.counters().messages_sent, 2u);
  child sub(std::string(FLOWER_BINARY_DIR) + "/bin/flower-sub --connect " + pub.bound_endpoints()[0] +
            " --json --count 10 --timeout 20");
  ASSERT_EQ(pub.wait_subscribers(1, 10s), 1u);
  pub.consume(std::span(all).subspan(20, 10));
  pub.close();
  const child_result r = sub.finish();
  EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.err;
  EXPECT_NE(r.err.find("early/flow: joined at message 3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("lost 0 messages (0 records) in 0 gaps"), std::string::npos) << r.err;
}

TEST(FlowerSub, PrintsExactlyWhatTheSensorJsonWouldInBothEncodings) {
  for (feed_format f : {feed_format::protobuf, feed_format::json}) {
    SCOPED_TRACE(name_of(f));
    const std::string endpoint = ipc_endpoint(f == feed_format::json ? "sub-json" : "sub-pb");
    feed_options o;
    o.bind = {endpoint};
    o.format = f;
    feed_publisher pub(o);
    const std::vector<flow_record> records = varied_records();
    child sub(std::string(FLOWER_BINARY_DIR) + "/bin/flower-sub --connect " + endpoint + " --json --count " +
              std::to_string(records.size()) + " --timeout 20");
    ASSERT_EQ(pub.wait_subscribers(1, 10s), 1u);
    pub.consume(records);
    pub.close();
    const child_result r = sub.finish();
    EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.err;
    std::string expected;
    for (const flow_record& rec : records) expected += to_json(rec) + "\n";
    EXPECT_EQ(r.out, expected);
  }
}

TEST(PythonExample, ReceivesABatch) {
  const std::string python = "/usr/bin/python3";
  if (std::system((python + " -c 'import zmq, google.protobuf' 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "python3-zmq or python3-protobuf is not installed (scripts/setup installs them)";
  for (feed_format f : {feed_format::protobuf, feed_format::json}) {
    SCOPED_TRACE(name_of(f));
    const std::string endpoint = ipc_endpoint(f == feed_format::json ? "py-json" : "py-pb");
    feed_options o;
    o.bind = {endpoint};
    o.format = f;
    feed_publisher pub(o);
    // The IPv4 and plain IPv6 records (Python prints IPv4-mapped IPv6 differently).
    std::vector<flow_record> records = varied_records();
    child py("PYTHONPATH=" + std::string(FLOWER_BINARY_DIR) + "/python " + python + " " +
             std::string(FLOWER_SOURCE_DIR) + "/examples/feed_subscriber.py --connect " + endpoint + " --json --count " +
             std::to_string(records.size()) + " --timeout 20");
    ASSERT_EQ(pub.wait_subscribers(1, 20s), 1u) << "the Python subscriber never subscribed";
    pub.consume(records);
    pub.close();
    const child_result r = py.finish();
    ASSERT_TRUE(WIFEXITED(r.status));
    EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.err;
    std::string expected;
    for (const flow_record& rec : records) {
      expected += to_json(rec);
      expected.pop_back();
      expected += ",\"flow_id\":" + std::to_string(flow_id_of(rec)) + "}\n";
    }
    EXPECT_EQ(r.out, expected);
  }
}

}  // namespace
}  // namespace flower
