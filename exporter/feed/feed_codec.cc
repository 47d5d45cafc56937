#include "exporter/feed/feed_codec.h"

#include <arpa/inet.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "exporter/community_id.h"
#include "exporter/json_writer.h"
#include "exporter/ledger_report.h"
#include "flower/v1/feed.pb.h"

namespace flower {
namespace {

uint64_t now_ns() noexcept {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

uint64_t mix64(uint64_t z) noexcept {  // splitmix64's finalizer
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

bool is_icmp(uint8_t proto) noexcept { return proto == 1 || proto == 58; }
bool is_ipsec(uint8_t proto) noexcept { return proto == 50 || proto == 51; }

// A record's address in its wire length: 4 bytes for IPv4 (the key stores
// it IPv4-mapped), 16 for IPv6.
std::string_view wire_addr(const std::array<uint8_t, 16>& a, uint8_t version) noexcept {
  const char* p = reinterpret_cast<const char*>(a.data());
  return version == 4 ? std::string_view(p + 12, 4) : std::string_view(p, 16);
}

void read_addr(std::string_view bytes, uint8_t version, std::array<uint8_t, 16>& out, flow_key& key) {
  if (version == 4 && bytes.size() == 4) {
    key.set_v4(out, reinterpret_cast<const uint8_t*>(bytes.data()));
  } else if (version == 6 && bytes.size() == 16) {
    std::memcpy(out.data(), bytes.data(), 16);
  } else {
    throw feed_decode_error("address of " + std::to_string(bytes.size()) + " bytes for IP version " +
                            std::to_string(version));
  }
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// A length-delimited field of FeedMessage (field numbers < 16: one tag byte).
void put_message_field(std::string& out, int field, const google::protobuf::MessageLite& m) {
  out.push_back(static_cast<char>(field << 3 | 2));
  put_varint(out, m.ByteSizeLong());
  m.AppendToString(&out);
}

void fill(v1::Envelope& e, const feed_envelope& env) {
  e.set_schema_version(env.schema_version);
  e.set_sensor_id(env.sensor_id);
  e.set_run_id(env.run_id);
  e.set_topic(env.topic);
  e.set_seq(env.seq);
  e.set_record_offset(env.record_offset);
  e.set_interval_start_ns(env.interval_start_ns);
  e.set_interval_end_ns(env.interval_end_ns);
  e.set_sent_ns(env.sent_ns);
}

feed_envelope read(const v1::Envelope& e) {
  feed_envelope env;
  env.schema_version = e.schema_version();
  env.sensor_id = e.sensor_id();
  env.run_id = e.run_id();
  env.topic = e.topic();
  env.seq = e.seq();
  env.record_offset = e.record_offset();
  env.interval_start_ns = e.interval_start_ns();
  env.interval_end_ns = e.interval_end_ns();
  env.sent_ns = e.sent_ns();
  return env;
}

nlohmann::ordered_json envelope_json(const feed_envelope& env) {
  return nlohmann::ordered_json{
      {"schema_version", env.schema_version}, {"sensor_id", env.sensor_id},
      {"run_id", env.run_id},                 {"topic", env.topic},
      {"seq", env.seq},                       {"record_offset", env.record_offset},
      {"interval_start_ns", env.interval_start_ns}, {"interval_end_ns", env.interval_end_ns},
      {"sent_ns", env.sent_ns},
  };
}

template <typename Json>
uint64_t u64(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) throw feed_decode_error(std::string("missing or bad \"") + key + "\"");
  return it->template get<uint64_t>();
}

template <typename Json>
std::string str(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) throw feed_decode_error(std::string("missing or bad \"") + key + "\"");
  return it->template get<std::string>();
}

template <typename T>
T narrow(uint64_t v, const char* what) {
  if (v > std::numeric_limits<T>::max()) throw feed_decode_error(std::string(what) + " out of range");
  return static_cast<T>(v);
}

end_reason reason_from(uint64_t code) {
  if (code < 1 || code > 5) throw feed_decode_error("end_reason " + std::to_string(code) + " unknown");
  return static_cast<end_reason>(code);
}

tunnel_kind tunnel_from(uint64_t v) {
  if (v > static_cast<uint64_t>(tunnel_kind::erspan)) throw feed_decode_error("tunnel " + std::to_string(v) + " unknown");
  return static_cast<tunnel_kind>(v);
}

tunnel_kind tunnel_from_name(std::string_view name) {
  for (uint8_t t = 0; t <= static_cast<uint8_t>(tunnel_kind::erspan); ++t)
    if (name_of(static_cast<tunnel_kind>(t)) == name) return static_cast<tunnel_kind>(t);
  throw feed_decode_error("tunnel \"" + std::string(name) + "\" unknown");
}

// ICMP records carry type/code in dst_port and in icmp_type/icmp_code; the
// engine keeps them in icmp_type_code with both key ports 0.
void set_ports(flow_record& r, uint64_t src_port, uint64_t dst_port) {
  if (is_icmp(r.key.proto)) {
    r.icmp_type_code = narrow<uint16_t>(dst_port, "dst_port");
  } else {
    r.key.port_a = narrow<uint16_t>(src_port, "src_port");
    r.key.port_b = narrow<uint16_t>(dst_port, "dst_port");
  }
}

feed_record read(const v1::FlowRecord& p) {
  feed_record out;
  flow_record& r = out.record;
  r.key.proto = narrow<uint8_t>(p.proto(), "proto");
  r.key.ip_version = narrow<uint8_t>(p.ip_version(), "ip_version");
  read_addr(p.src_addr(), r.key.ip_version, r.key.addr_a, r.key);
  read_addr(p.dst_addr(), r.key.ip_version, r.key.addr_b, r.key);
  set_ports(r, p.src_port(), p.dst_port());
  r.key.vlan = narrow<uint16_t>(p.vlan(), "vlan");
  r.fwd.packets = p.packets();
  r.fwd.bytes = p.bytes();
  r.fwd.frame_bytes = p.frame_bytes();
  r.rev.packets = p.rev_packets();
  r.rev.bytes = p.rev_bytes();
  r.rev.frame_bytes = p.rev_frame_bytes();
  r.fwd.tcp_flags = narrow<uint8_t>(p.tcp_flags(), "tcp_flags");
  r.rev.tcp_flags = narrow<uint8_t>(p.rev_tcp_flags(), "rev_tcp_flags");
  r.first_ns = p.first_ns();
  r.last_ns = p.last_ns();
  r.reason = reason_from(static_cast<uint64_t>(p.end_reason()));
  r.fwd.spi = p.spi();
  r.rev.spi = p.rev_spi();
  r.tunnel = tunnel_from(static_cast<uint64_t>(p.tunnel()));
  out.flow_id = p.flow_id();
  out.community_id = p.community_id();
  return out;
}

feed_record read_json_record(const nlohmann::json& j) {
  feed_record out;
  flow_record& r = out.record;
  r.key.proto = narrow<uint8_t>(u64(j, "proto"), "proto");
  r.key.ip_version = narrow<uint8_t>(u64(j, "ip_version"), "ip_version");
  const int family = r.key.ip_version == 4 ? AF_INET : AF_INET6;
  for (auto [key, addr] : {std::pair{"src_addr", &r.key.addr_a}, std::pair{"dst_addr", &r.key.addr_b}}) {
    uint8_t buf[16];
    const std::string text = str(j, key);
    if (inet_pton(family, text.c_str(), buf) != 1) throw feed_decode_error("bad address \"" + text + "\"");
    read_addr(std::string_view(reinterpret_cast<const char*>(buf), family == AF_INET ? 4 : 16), r.key.ip_version,
              *addr, r.key);
  }
  set_ports(r, u64(j, "src_port"), u64(j, "dst_port"));
  r.key.vlan = narrow<uint16_t>(u64(j, "vlan"), "vlan");
  r.fwd.packets = u64(j, "packets");
  r.fwd.bytes = u64(j, "bytes");
  r.fwd.frame_bytes = u64(j, "frame_bytes");
  r.rev.packets = u64(j, "rev_packets");
  r.rev.bytes = u64(j, "rev_bytes");
  r.rev.frame_bytes = u64(j, "rev_frame_bytes");
  r.fwd.tcp_flags = narrow<uint8_t>(u64(j, "tcp_flags"), "tcp_flags");
  r.rev.tcp_flags = narrow<uint8_t>(u64(j, "rev_tcp_flags"), "rev_tcp_flags");
  r.first_ns = u64(j, "first_ns");
  r.last_ns = u64(j, "last_ns");
  r.reason = reason_from(u64(j, "end_reason_code"));
  if (name_of(r.reason) != str(j, "end_reason")) throw feed_decode_error("end_reason does not match end_reason_code");
  if (is_ipsec(r.key.proto)) {
    r.fwd.spi = narrow<uint32_t>(u64(j, "spi"), "spi");
    r.rev.spi = narrow<uint32_t>(u64(j, "rev_spi"), "rev_spi");
  }
  r.tunnel = tunnel_from_name(str(j, "tunnel"));
  if (j.contains("community_id")) out.community_id = str(j, "community_id");
  out.flow_id = u64(j, "flow_id");
  return out;
}

void fill(v1::Ledger& p, const drop_ledger& l) {
  p.set_source_dropped(l.source_dropped);
  p.set_source_undrained(l.source_undrained);
  p.set_received(l.received);
  p.set_filtered(l.filtered);
  for (size_t i = 0; i < kDecodeStatusCount; ++i) {
    v1::ReasonCounts* c = kDecodeStatusCategory[i] == status_category::malformed     ? p.mutable_malformed()
                          : kDecodeStatusCategory[i] == status_category::unsupported ? p.mutable_unsupported()
                                                                                     : nullptr;
    if (c == nullptr) continue;
    v1::ReasonCount* r = c->add_reasons();
    r->set_reason(std::string(kDecodeStatusNames[i]));
    r->set_packets(l.decode[i]);
  }
  p.mutable_malformed()->set_total(l.malformed());
  p.mutable_unsupported()->set_total(l.unsupported());
  p.mutable_ring_dropped()->set_total(l.ring_dropped());
  for (uint64_t v : l.ring_full) p.mutable_ring_dropped()->add_per_ring(v);
  p.set_metered(l.metered);
  p.mutable_fragments()->set_first(l.fragments.first);
  p.mutable_fragments()->set_resolved(l.fragments.resolved);
  p.mutable_fragments()->set_orphans(l.fragments.orphans);
  p.set_time_jumps(l.time_jumps);
  v1::FlowCounters* f = p.mutable_flows();
  auto by = [&](end_reason r) { return l.records[static_cast<size_t>(r)]; };
  f->set_created(l.flows_created);
  f->set_records(l.records_exported());
  f->set_idle(by(end_reason::idle));
  f->set_active(by(end_reason::active));
  f->set_tcp_end(by(end_reason::tcp_end));
  f->set_shutdown(by(end_reason::shutdown));
  f->set_evicted(by(end_reason::evicted));
  p.mutable_output()->set_records_written(l.records_written);
  p.mutable_output()->set_errors(l.output_errors);
  p.mutable_output()->set_exporter_dropped(l.exporter_dropped);
  p.set_conserved(l.reconciles());
}

nlohmann::ordered_json feed_json(const feed_counters& c) {
  return nlohmann::ordered_json{
      {"records_queued", c.records_queued},
      {"records_sent", c.records_sent},
      {"messages_sent", c.messages_sent},
      {"queue_dropped_records", c.queue_dropped_records},
      {"hwm_dropped_messages", c.hwm_dropped_messages},
      {"hwm_dropped_records", c.hwm_dropped_records},
      {"export_dropped", c.export_dropped()},
      {"queue_capacity", c.queue_capacity},
      {"queue_depth", c.queue_depth},
      {"subscribers", c.subscribers},
  };
}

std::string proto_to_json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(m, &out, options).ok()) throw feed_decode_error("cannot render as JSON");
  return out;
}

}  // namespace

std::string_view name_of(feed_format f) noexcept { return f == feed_format::json ? "json" : "protobuf"; }

bool parse_feed_format(std::string_view name, feed_format& out) noexcept {
  if (name == "protobuf") out = feed_format::protobuf;
  else if (name == "json") out = feed_format::json;
  else return false;
  return true;
}

uint64_t flow_id_of(const flow_record& r) noexcept {
  uint64_t words[sizeof(flow_key) / 8];
  static_assert(sizeof(flow_key) % 8 == 0);
  std::memcpy(words, &r.key, sizeof words);
  uint64_t h = mix64(r.first_ns ^ 0x9e3779b97f4a7c15ULL);
  for (uint64_t w : words) h = mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
  return h;
}

struct flow_encoder::protobuf_scratch {
  v1::Envelope envelope;
  v1::FlowBatch batch;
};

flow_encoder::flow_encoder(feed_format format) : format_(format), pb_(std::make_unique<protobuf_scratch>()) {}
flow_encoder::~flow_encoder() = default;

void flow_encoder::encode(feed_envelope& env, std::span<const flow_record> records, std::string& out) {
  env.interval_start_ns = records.empty() ? 0 : UINT64_MAX;
  env.interval_end_ns = 0;
  for (const flow_record& r : records) {
    env.interval_start_ns = std::min(env.interval_start_ns, r.first_ns);
    env.interval_end_ns = std::max(env.interval_end_ns, r.last_ns);
  }
  env.sent_ns = now_ns();
  out.clear();

  if (format_ == feed_format::json) {
    out += "{\"envelope\":";
    out += envelope_json(env).dump();
    out += ",\"flow\":{\"records\":[";
    for (size_t i = 0; i < records.size(); ++i) {
      if (i != 0) out += ',';
      append_json(out, records[i], {}, flow_id_of(records[i]));
    }
    out += "]}}";
    return;
  }

  // FeedMessage on the wire is its fields in order: the envelope (1), then
  // the flow batch (2). Building them as two messages lets the batch keep
  // its record objects between calls (a oneof member would be freed).
  fill(pb_->envelope, env);
  auto* list = pb_->batch.mutable_records();
  list->Clear();  // keeps the cleared FlowRecord objects for reuse
  for (const flow_record& r : records) {
    v1::FlowRecord* p = list->Add();
    const flow_key& k = r.key;
    const bool icmp = is_icmp(k.proto);
    p->set_proto(k.proto);
    p->set_ip_version(k.ip_version);
    const std::string_view src = wire_addr(k.addr_a, k.ip_version), dst = wire_addr(k.addr_b, k.ip_version);
    p->set_src_addr(src.data(), src.size());
    p->set_dst_addr(dst.data(), dst.size());
    p->set_src_port(icmp ? 0 : k.port_a);
    p->set_dst_port(icmp ? r.icmp_type_code : k.port_b);
    p->set_vlan(k.vlan);
    p->set_packets(r.fwd.packets);
    p->set_bytes(r.fwd.bytes);
    p->set_frame_bytes(r.fwd.frame_bytes);
    p->set_rev_packets(r.rev.packets);
    p->set_rev_bytes(r.rev.bytes);
    p->set_rev_frame_bytes(r.rev.frame_bytes);
    p->set_tcp_flags(r.fwd.tcp_flags);
    p->set_rev_tcp_flags(r.rev.tcp_flags);
    p->set_first_ns(r.first_ns);
    p->set_last_ns(r.last_ns);
    p->set_end_reason(static_cast<v1::EndReason>(r.reason));
    if (icmp) {
      p->set_icmp_type(r.icmp_type_code >> 8);
      p->set_icmp_code(r.icmp_type_code & 0xff);
    }
    if (is_ipsec(k.proto)) {
      p->set_spi(r.fwd.spi);
      p->set_rev_spi(r.rev.spi);
    }
    p->set_tunnel(static_cast<v1::Tunnel>(r.tunnel));
    const community_id_text id = community_id_of(r);
    p->set_community_id(id.data, id.size);
    p->set_flow_id(flow_id_of(r));
  }
  put_message_field(out, v1::FeedMessage::kEnvelopeFieldNumber, pb_->envelope);
  put_message_field(out, v1::FeedMessage::kFlowFieldNumber, pb_->batch);
}

void encode_stats(feed_format format, feed_envelope& env, const feed_stats& s, std::string& out) {
  env.sent_ns = now_ns();
  if (format == feed_format::json) {
    nlohmann::ordered_json queues = nlohmann::ordered_json::array();
    for (const queue_counters& q : s.queues)
      queues.push_back({{"queue", q.queue}, {"received", q.received}, {"dropped", q.dropped}});
    nlohmann::ordered_json j{
        {"envelope", envelope_json(env)},
        {"stats",
         {{"ledger", s.ledger},
          {"rates",
           {{"received_per_s", s.rates.received_per_s},
            {"metered_per_s", s.rates.metered_per_s},
            {"records_per_s", s.rates.records_per_s},
            {"dropped_per_s", s.rates.dropped_per_s},
            {"feed_records_per_s", s.rates.feed_records_per_s}}},
          {"feed", feed_json(s.feed)},
          {"queues", queues}}},
    };
    out = j.dump();
    return;
  }
  v1::FeedMessage m;
  fill(*m.mutable_envelope(), env);
  v1::Stats* p = m.mutable_stats();
  fill(*p->mutable_ledger(), s.ledger);
  v1::Rates* r = p->mutable_rates();
  r->set_received_per_s(s.rates.received_per_s);
  r->set_metered_per_s(s.rates.metered_per_s);
  r->set_records_per_s(s.rates.records_per_s);
  r->set_dropped_per_s(s.rates.dropped_per_s);
  r->set_feed_records_per_s(s.rates.feed_records_per_s);
  v1::FeedCounters* f = p->mutable_feed();
  f->set_records_queued(s.feed.records_queued);
  f->set_records_sent(s.feed.records_sent);
  f->set_messages_sent(s.feed.messages_sent);
  f->set_queue_dropped_records(s.feed.queue_dropped_records);
  f->set_hwm_dropped_messages(s.feed.hwm_dropped_messages);
  f->set_hwm_dropped_records(s.feed.hwm_dropped_records);
  f->set_export_dropped(s.feed.export_dropped());
  f->set_queue_capacity(s.feed.queue_capacity);
  f->set_queue_depth(s.feed.queue_depth);
  f->set_subscribers(s.feed.subscribers);
  for (const queue_counters& q : s.queues) {
    v1::QueueCounters* c = p->add_queues();
    c->set_queue(q.queue);
    c->set_received(q.received);
    c->set_dropped(q.dropped);
  }
  out.clear();
  m.AppendToString(&out);
}

feed_message decode_feed_message(std::string_view payload) {
  feed_message m;
  if (payload.empty()) throw feed_decode_error("empty payload");
  if (payload.front() == '{') {
    m.format = feed_format::json;
    nlohmann::json j = nlohmann::json::parse(payload.begin(), payload.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw feed_decode_error("not a JSON object");
    auto env = j.find("envelope");
    if (env == j.end() || !env->is_object()) throw feed_decode_error("no envelope");
    m.envelope.schema_version = narrow<uint32_t>(u64(*env, "schema_version"), "schema_version");
    m.envelope.sensor_id = str(*env, "sensor_id");
    m.envelope.run_id = u64(*env, "run_id");
    m.envelope.topic = str(*env, "topic");
    m.envelope.seq = u64(*env, "seq");
    m.envelope.record_offset = u64(*env, "record_offset");
    m.envelope.interval_start_ns = u64(*env, "interval_start_ns");
    m.envelope.interval_end_ns = u64(*env, "interval_end_ns");
    m.envelope.sent_ns = u64(*env, "sent_ns");
    j.erase("envelope");
    if (auto flow = j.find("flow"); flow != j.end()) {
      auto list = flow->find("records");
      if (list == flow->end() || !list->is_array()) throw feed_decode_error("flow without records");
      m.records.reserve(list->size());
      for (const nlohmann::json& r : *list) m.records.push_back(read_json_record(r));
    } else {
      m.body_json = j.dump();
    }
    return m;
  }
  if (payload.front() != static_cast<char>(v1::FeedMessage::kEnvelopeFieldNumber << 3 | 2))
    throw feed_decode_error("neither encoding (first byte is not '{' or 0x0a)");
  v1::FeedMessage p;
  if (!p.ParseFromArray(payload.data(), static_cast<int>(payload.size())))
    throw feed_decode_error("not a flower.v1.FeedMessage");
  m.format = feed_format::protobuf;
  m.envelope = read(p.envelope());
  switch (p.payload_case()) {
    case v1::FeedMessage::kFlow:
      m.records.reserve(static_cast<size_t>(p.flow().records_size()));
      for (const v1::FlowRecord& r : p.flow().records()) m.records.push_back(read(r));
      break;
    case v1::FeedMessage::kUpdate: m.body_json = "{\"update\":" + proto_to_json(p.update()) + "}"; break;
    case v1::FeedMessage::kAgg: m.body_json = "{\"agg\":" + proto_to_json(p.agg()) + "}"; break;
    case v1::FeedMessage::kStats: m.body_json = "{\"stats\":" + proto_to_json(p.stats()) + "}"; break;
    case v1::FeedMessage::PAYLOAD_NOT_SET: m.body_json = "{}"; break;
  }
  return m;
}

}  // namespace flower
