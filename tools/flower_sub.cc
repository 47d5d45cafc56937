// flower-sub: subscribes to one or more sensors' ZeroMQ feeds (docs/feed.md)
// and prints what arrives: flow records as JSON Lines (--json, exactly the
// lines of flower-sensor --json) or one readable line each, other topics as
// one JSON object per line. Sequence gaps are reported on stderr as they
// are seen, and a summary of what was received and lost at the end
// (Ctrl-C, --count, --timeout).
//
// Exit status: 0; 1 on a setup error; 2 on a bad key file or key option,
// or when --count records did not arrive before --timeout.

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "exporter/feed/feed_codec.h"
#include "exporter/feed/feed_curve.h"
#include "exporter/feed/feed_publisher.h"
#include "exporter/feed/sequence_tracker.h"
#include "exporter/json_writer.h"
#include "sensor/text_writer.h"
#include "tools/stop_signals.h"

namespace flower {
namespace {

struct sub_options {
  std::vector<std::string> connect;
  std::vector<std::string> bind;
  std::vector<std::string> topics;
  bool json = false;
  bool stats = false;
  bool flow_id = false;
  bool quiet = false;
  uint64_t count = 0;   // 0: no limit
  double timeout_s = 0; // 0: none
  curve_options curve;  // docs/feed.md, "Security"
};

void report(const feed_envelope& env, const sequence_event& e, bool quiet) {
  if (quiet) return;
  const char* sensor = env.sensor_id.c_str();
  const char* topic = env.topic.c_str();
  switch (e.kind) {
    case sequence_event::joined:
      if (env.seq != 1)
        std::fprintf(stderr, "flower-sub: %s/%s: joined at message %" PRIu64 " (earlier ones were sent before we subscribed)\n",
                     sensor, topic, env.seq);
      break;
    case sequence_event::restarted:
      std::fprintf(stderr, "flower-sub: %s/%s: the sensor restarted (run %016" PRIx64 ")\n", sensor, topic, env.run_id);
      if (e.lost_messages == 0) break;
      [[fallthrough]];
    case sequence_event::gap:
      std::fprintf(stderr,
                   "flower-sub: gap in %s/%s: lost messages %" PRIu64 "..%" PRIu64 " (%" PRIu64 " messages, %" PRIu64
                   " records)\n",
                   sensor, topic, e.first_lost, e.last_lost, e.lost_messages, e.lost_records);
      break;
    case sequence_event::repeated:
      std::fprintf(stderr, "flower-sub: %s/%s: message %" PRIu64 " repeated or out of order\n", sensor, topic, env.seq);
      break;
    case sequence_event::in_order: break;
  }
}

// Buffered stdout: one write per received message, not per record.
void write_all(const std::string& text) {
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(STDOUT_FILENO, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      g_stop_requested = true;  // reader gone
      return;
    }
    off += static_cast<size_t>(n);
  }
}

int run(const sub_options& o) {
  // Destroyed in reverse: the socket, the authenticator, the context.
  zmq::context_t context(1);
  zap_counters zap_counts;
  std::unique_ptr<zap_authenticator> zap;
  if (o.curve.enabled() && !o.bind.empty())
    zap = std::make_unique<zap_authenticator>(context, o.curve.allowed_z85, zap_counts);
  zmq::socket_t socket(context, zmq::socket_type::sub);
  socket.set(zmq::sockopt::linger, 0);
  std::vector<std::string> topics = o.topics;
  if (topics.empty()) topics.emplace_back(kTopicFlow);
  if (o.stats) topics.emplace_back(kTopicStats);
  // "flow" last: a sensor's --wait-subscribers counts subscriptions to
  // "flow", and a pipe delivers them in order, so once it has seen that one
  // it has seen the others too.
  std::stable_partition(topics.begin(), topics.end(), [](const std::string& t) { return t != kTopicFlow; });
  for (const std::string& t : topics) socket.set(zmq::sockopt::subscribe, t);
  apply_curve_server(socket, o.curve);
  for (const std::string& e : o.bind) {
    try {
      socket.bind(e);
    } catch (const zmq::error_t& err) {
      throw std::runtime_error("cannot bind " + e + ": " + err.what());
    }
  }
  if (!o.connect.empty()) apply_curve_client(socket, o.curve);  // the binds keep the server role
  for (const std::string& e : o.connect) {
    try {
      socket.connect(e);
    } catch (const zmq::error_t& err) {
      throw std::runtime_error("cannot connect to " + e + ": " + err.what());
    }
  }

  sequence_tracker tracker;
  uint64_t records = 0, undecodable = 0;
  const auto start = std::chrono::steady_clock::now();
  std::string out;
  zmq_pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  while (!g_stop_requested.load(std::memory_order_relaxed) && (o.count == 0 || records < o.count)) {
    if (o.timeout_s > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= o.timeout_s)
      break;
    int ready = 0;
    try {
      ready = zmq::poll(&item, 1, std::chrono::milliseconds(100));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    if (ready == 0) continue;
    zmq::message_t topic, payload;
    if (!socket.recv(topic, zmq::recv_flags::dontwait)) continue;
    if (!topic.more() || !socket.recv(payload, zmq::recv_flags::dontwait)) {
      ++undecodable;
      continue;
    }
    for (bool more = payload.more(); more;) {  // a newer publisher may add frames: skip them
      zmq::message_t extra;
      more = socket.recv(extra, zmq::recv_flags::dontwait) && extra.more();
    }
    feed_message m;
    try {
      m = decode_feed_message(payload.to_string_view());
    } catch (const std::exception& e) {
      ++undecodable;
      if (!o.quiet)
        std::fprintf(stderr, "flower-sub: undecodable message on topic %.*s: %s\n",
                     static_cast<int>(topic.size()), static_cast<const char*>(topic.data()), e.what());
      continue;
    }
    if (m.envelope.schema_version != kFeedSchemaVersion && !o.quiet)
      std::fprintf(stderr, "flower-sub: %s: schema version %u (this reader knows %u)\n", m.envelope.sensor_id.c_str(),
                   m.envelope.schema_version, kFeedSchemaVersion);
    report(m.envelope, tracker.observe(m.envelope, m.records.size()), o.quiet);

    out.clear();
    if (m.envelope.topic == kTopicFlow) {
      for (const feed_record& r : m.records) {
        if (o.json) {
          append_json(out, r.record, {}, o.flow_id ? std::optional<uint64_t>(r.flow_id) : std::nullopt);
          out += '\n';
        } else {
          out += to_text(r.record);
        }
      }
      records += m.records.size();
    } else {
      // {"envelope":{...},"stats":{...}}: the body is an object; the envelope goes in front.
      nlohmann::ordered_json env{{"sensor_id", m.envelope.sensor_id},
                                 {"run_id", m.envelope.run_id},
                                 {"topic", m.envelope.topic},
                                 {"seq", m.envelope.seq},
                                 {"interval_start_ns", m.envelope.interval_start_ns},
                                 {"interval_end_ns", m.envelope.interval_end_ns}};
      out += "{\"envelope\":" + env.dump();
      out += m.body_json.size() > 2 ? "," + m.body_json.substr(1) : std::string("}");
      out += '\n';
    }
    write_all(out);
  }

  const stream_totals t = tracker.totals();
  if (!o.quiet) {
    std::fprintf(stderr,
                 "flower-sub: received %" PRIu64 " records in %" PRIu64 " messages from %zu stream(s); lost %" PRIu64
                 " messages (%" PRIu64 " records) in %" PRIu64 " gaps; %" PRIu64 " restarts, %" PRIu64
                 " repeated, %" PRIu64 " undecodable\n",
                 t.records, t.messages, tracker.streams().size(), t.lost_messages, t.lost_records, t.gaps, t.restarts,
                 t.repeated, undecodable);
    if (zap_counts.refused.load() != 0)
      std::fprintf(stderr, "flower-sub: refused %" PRIu64 " CURVE handshakes (key not in --allowed-keys)\n",
                   zap_counts.refused.load());
  }
  return o.count != 0 && records < o.count ? 2 : 0;
}

}  // namespace
}  // namespace flower

int main(int argc, char** argv) {
  using namespace flower;
  sub_options o;
  CLI::App app{
      "flower-sub: subscribe to flower-sensor feeds (docs/feed.md) and print what arrives.\n"
      "Flow records as JSON Lines (--json, the fields of flower-sensor --json) or one line each;\n"
      "other topics as one JSON object per line. Gaps in a sensor's sequence numbers are\n"
      "reported on stderr; Ctrl-C prints what was received and lost.",
      "flower-sub"};
  app.get_formatter()->column_width(30);
  app.add_option("--connect", o.connect, "Connect to a sensor's --publish ENDPOINT (repeatable; default tcp://127.0.0.1:5556)")
      ->type_name("ENDPOINT");
  app.add_option("--bind", o.bind, "Bind ENDPOINT for sensors that connect (flower-sensor -s); repeatable")
      ->type_name("ENDPOINT");
  app.add_option("--topic", o.topics, "Subscribe to topic T: flow, update, agg, stats (repeatable; default flow)")
      ->type_name("T");
  app.add_flag("--json", o.json, "Print records as JSON Lines (default: one readable line each)");
  app.add_flag("--stats", o.stats, "Also subscribe to stats (the sensor's packet ledger)");
  app.add_flag("--flow-id", o.flow_id, "With --json: add each record's \"flow_id\"");
  app.add_flag("-q,--quiet", o.quiet, "No gap reports or summary on stderr");
  app.add_option("--count", o.count, "Stop after N flow records")->type_name("N");
  app.add_option("--timeout", o.timeout_s, "Stop after SEC seconds")->type_name("SEC")->check(CLI::NonNegativeNumber);
  std::string secret_key, server_key, allowed_keys;
  app.add_option("--secret-key", secret_key, "Use CURVE: this subscriber's key pair (flower-keys PREFIX makes PREFIX.secret)")
      ->type_name("FILE");
  app.add_option("--server-key", server_key, "With --connect: the sensor's public key (its PREFIX.pub)")->type_name("FILE");
  app.add_option("--allowed-keys", allowed_keys, "With --bind: the sensors' public keys admitted (one per line)")
      ->type_name("FILE");
  CLI11_PARSE(app, argc, argv);
  if (o.connect.empty() && o.bind.empty()) o.connect.emplace_back(kDefaultPublishEndpoint);
  const bool any_key = !secret_key.empty() || !server_key.empty() || !allowed_keys.empty();
  const char* usage = nullptr;
  if (any_key && secret_key.empty()) usage = "--server-key and --allowed-keys need --secret-key";
  else if (any_key && !o.connect.empty() && server_key.empty())
    usage = "--connect with --secret-key needs --server-key (the sensor's public key)";
  else if (any_key && !o.bind.empty() && allowed_keys.empty())
    usage = "--bind with --secret-key needs --allowed-keys (the sensors admitted)";
  else if (!server_key.empty() && o.connect.empty()) usage = "--server-key needs --connect";
  else if (!allowed_keys.empty() && o.bind.empty()) usage = "--allowed-keys needs --bind";
  if (usage != nullptr) {
    std::fprintf(stderr, "flower-sub: %s\n", usage);
    return 2;
  }
  if (any_key) {
    try {
      if (!curve_available()) throw key_file_error("this libzmq has no CURVE support");
      o.curve.own = read_secret_key_file(secret_key);
      if (!server_key.empty()) o.curve.server_public_z85 = read_public_key_file(server_key);
      if (!allowed_keys.empty()) o.curve.allowed_z85 = read_allowed_keys_file(allowed_keys);
    } catch (const key_file_error& e) {
      std::fprintf(stderr, "flower-sub: %s\n", e.what());
      return 2;
    }
  }
  install_stop_signals();
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flower-sub: %s\n", e.what());
    return 1;
  }
}
