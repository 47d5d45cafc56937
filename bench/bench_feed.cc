// The ZeroMQ feed (docs/feed.md): cost per record of encoding (protobuf and
// JSON, with and without the Community ID's SHA-1 that every record
// carries), of decoding, and records per second from consume() through the
// publisher's thread and a PUB socket to a SUB on loopback TCP (the SUB
// counts messages and does not decode: transport only).

#include <benchmark/benchmark.h>

#include <arpa/inet.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "exporter/community_id.h"
#include "exporter/feed/feed_codec.h"
#include "exporter/feed/feed_publisher.h"

namespace flower {
namespace {

// A batch of distinct records: TCP and UDP, IPv4 and a share of IPv6.
std::vector<flow_record> records(size_t n) {
  std::vector<flow_record> v(n);
  for (size_t i = 0; i < n; ++i) {
    flow_record& r = v[i];
    if (i % 4 == 3) {
      r.key.ip_version = 6;
      r.key.addr_a = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, uint8_t(i >> 8), uint8_t(i)};
      r.key.addr_b = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    } else {
      const uint8_t a[4] = {10, uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i)};
      const uint8_t b[4] = {192, 0, 2, 1};
      r.key.set_v4(r.key.addr_a, a);
      r.key.set_v4(r.key.addr_b, b);
      r.key.ip_version = 4;
    }
    r.key.proto = i % 3 == 0 ? 17 : 6;
    r.key.port_a = static_cast<uint16_t>(1024 + i % 60000);
    r.key.port_b = r.key.proto == 17 ? 53 : 443;
    r.fwd = {12, 1804, 1972, 0x1b, 0};
    r.rev = {10, 9620, 9760, 0x1b, 0};
    r.first_ns = 1'700'000'000'000'000'000ULL + i * 1000;
    r.last_ns = r.first_ns + 1'234'000'000ULL;
    r.reason = end_reason::tcp_end;
  }
  return v;
}

constexpr size_t kBatch = 1024;

void BM_EncodeFlowBatch(benchmark::State& state) {
  const auto format = static_cast<feed_format>(state.range(0));
  const std::vector<flow_record> batch = records(kBatch);
  flow_encoder encoder(format);
  feed_envelope env;
  env.sensor_id = "bench";
  env.topic = "flow";
  std::string payload;
  for (auto _ : state) {
    ++env.seq;
    encoder.encode(env, batch, payload);
    benchmark::DoNotOptimize(payload.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  state.counters["bytes_per_record"] = static_cast<double>(payload.size()) / kBatch;
  state.SetLabel(std::string(name_of(format)) + ", Community ID included");
}
BENCHMARK(BM_EncodeFlowBatch)->Arg(0)->Arg(1)->ArgName("format");

// The share of the encoders' time that is the Community ID (SHA-1).
void BM_CommunityId(benchmark::State& state) {
  const std::vector<flow_record> batch = records(kBatch);
  for (auto _ : state)
    for (const flow_record& r : batch) benchmark::DoNotOptimize(community_id_of(r));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
}
BENCHMARK(BM_CommunityId);

void BM_DecodeFlowBatch(benchmark::State& state) {
  const auto format = static_cast<feed_format>(state.range(0));
  const std::vector<flow_record> batch = records(kBatch);
  flow_encoder encoder(format);
  feed_envelope env;
  env.topic = "flow";
  std::string payload;
  encoder.encode(env, batch, payload);
  for (auto _ : state) benchmark::DoNotOptimize(decode_feed_message(payload).records.data());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  state.SetLabel(std::string(name_of(format)));
}
BENCHMARK(BM_DecodeFlowBatch)->Arg(0)->Arg(1)->ArgName("format");

// consume() -> queue -> publisher thread (encode + send) -> PUB -> loopback
// TCP -> SUB (a thread that receives). Each iteration moves 256k records and
// is timed until the SUB has every message.
void BM_PublishToSubscriber(benchmark::State& state) {
  const auto format = static_cast<feed_format>(state.range(0));
  feed_options o;
  o.bind = {"tcp://127.0.0.1:*"};
  o.format = format;
  o.wait_when_full = true;  // measure throughput, not drops
  feed_publisher pub(o);
  zmq::context_t ctx(1);
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::rcvtimeo, 100);
  sub.set(zmq::sockopt::subscribe, "flow");
  sub.connect(pub.bound_endpoints()[0]);
  std::atomic<uint64_t> received{0};
  std::atomic<bool> done{false};
  std::thread reader([&] {
    zmq::message_t m;
    while (!done.load(std::memory_order_relaxed)) {
      if (!sub.recv(m)) continue;
      if (!m.more()) received.fetch_add(1, std::memory_order_relaxed);
    }
  });
  if (pub.wait_subscribers(1, std::chrono::seconds(10)) != 1) {
    state.SkipWithError("no subscription");
    done = true;
    reader.join();
    return;
  }
  const std::vector<flow_record> batch = records(kBatch);
  constexpr size_t kPerIteration = 256 * kBatch;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < kPerIteration / kBatch; ++i) pub.consume(batch);
    while (pub.counters().records_sent + pub.counters().hwm_dropped_records < pub.counters().records_queued ||
           received.load(std::memory_order_relaxed) < pub.counters().messages_sent)
      std::this_thread::yield();
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const feed_counters c = pub.counters();
  pub.close();
  done = true;
  reader.join();
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kPerIteration));
  state.counters["dropped"] = static_cast<double>(c.export_dropped());
  state.counters["records_per_message"] =
      c.messages_sent != 0 ? static_cast<double>(c.records_sent) / static_cast<double>(c.messages_sent) : 0;
  state.SetLabel(std::string(name_of(format)) + ", tcp loopback, SUB does not decode");
}
BENCHMARK(BM_PublishToSubscriber)->Arg(0)->Arg(1)->ArgName("format")->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace flower
