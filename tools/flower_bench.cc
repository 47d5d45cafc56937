// flower-bench: drives synthetic or replayed traffic through the real
// multi-core engine (pipeline/parallel_engine.h, the sensor's engine) and
// reports throughput, drops and memory. Frames are generated before the
// clock starts: generation cost is never measured. A long run prepares a
// bounded number of packets and loops over them (synthetic_traffic::
// start_loop between loops, off the clock); a run that cannot fit even
// its smallest preparation is refused before anything is allocated.
//
//   flower-bench --flows 1000000 --packets 4000000 --threads 2 --json
//   flower-bench --sweep --sweep-out sweep.tsv     # then bench/sweep-plot sweep.tsv out.png
//   flower-bench --flows 10000 --publish ipc:///tmp/f  # records through the ZeroMQ feed to a SUB thread

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "exporter/feed/feed_publisher.h"
#include "exporter/ledger_report.h"
#include "pipeline/flow_table.h"
#include "pipeline/parallel_engine.h"
#include "traffic/replay_source.h"
#include "traffic/synthetic_source.h"

namespace {

using namespace flower;
using clock_type = std::chrono::steady_clock;

constexpr uint64_t kSweepChurnFlows = 100'000;  // concurrent flows of the sweep's churn points
// Packets built in memory at most (about 4 GB at 64 B, with per-queue
// views): every sweep point's default (3 x 10M flows) fits, so sweeps never
// loop; longer runs loop over this many (fewer when memory is short).
constexpr uint64_t kMaxPreparedPackets = 32ull << 20;

struct bench_options {
  uint64_t flows = 10'000;
  uint64_t packets = 0;  // 0 = max(4M, 3 x flows)
  uint64_t prepare = 0;  // packets built in memory at most; 0 = kMaxPreparedPackets
  std::optional<uint64_t> hash_seed;
  unsigned threads = 0;
  std::string size = "64";
  double v6_share = 0.0;
  double udp_share = 0.2;
  double zipf = 0.0;
  std::string order = "random";  // of uniform traffic: random | slots
  double churn = 0.0;
  double packet_rate = 10e6;
  double idle_timeout_s = 30.0;
  uint32_t max_flows = 0;  // 0 = sized from flows and churn
  std::string replay;
  std::string feed = "queue";
  bool no_pin = false;
  bool no_warmup = false;
  unsigned decode_threads = 0;
  bool json = false;
  bool sweep = false;
  std::string sweep_out = "flower-sweep.tsv";
  std::vector<uint64_t> sweep_flows{1'000, 10'000, 100'000, 1'000'000, 10'000'000};
  std::vector<double> sweep_churn{1e3, 1e4, 1e5, 1e6, 1e7};  // new flows/s at kSweepChurnFlows concurrent
  unsigned repeat = 1;
  std::string publish;  // non-empty: records also go through a feed_publisher bound here
  std::string feed_format = "protobuf";
};

// What the order applies to: uniform synthetic traffic only.
const char* order_name(const bench_options& o) { return o.zipf > 0 ? "zipf" : o.order.c_str(); }

// Counts records; formatting them is the exporter's cost, not the engine's.
struct counting_sink final : record_sink {
  uint64_t records = 0;
  uint64_t packets = 0;
  void consume(std::span<const flow_record> r) override {
    records += r.size();
    for (const flow_record& x : r) packets += x.fwd.packets + x.rev.packets;
  }
};

// Both sinks, in order: the count, then the publisher's queue.
struct tee_sink final : record_sink {
  record_sink* first;
  record_sink* second;
  tee_sink(record_sink& a, record_sink& b) : first(&a), second(&b) {}
  void consume(std::span<const flow_record> r) override {
    first->consume(r);
    second->consume(r);
  }
};

// --publish: a feed_publisher as the engine's second sink (live settings:
// it drops rather than waits when full), and a SUB thread on its endpoint
// that receives every message (no decoding: a subscriber's own cost), so
// the run pays for the real path: copy into the queue, encode, send.
class feed_attachment {
 public:
  feed_attachment(const std::string& endpoint, const std::string& format) {
    feed_options fo;
    fo.bind = {endpoint};
    if (!parse_feed_format(format, fo.format)) throw std::invalid_argument("--feed-format must be protobuf or json");
    fo.sensor_id = "flower-bench";
    publisher_.emplace(std::move(fo));
    socket_.set(zmq::sockopt::rcvhwm, 0);  // the reader never refuses: drops are the publisher's to count
    socket_.set(zmq::sockopt::subscribe, "flow");
    socket_.connect(publisher_->bound_endpoints().at(0));
    reader_ = std::thread([this] { read(); });
    if (publisher_->wait_subscribers(1, std::chrono::seconds(5)) < 1)
      throw std::runtime_error("--publish: the SUB reader did not subscribe within 5 s");
  }
  ~feed_attachment() { stop_reader(); }
  feed_attachment(const feed_attachment&) = delete;
  feed_attachment& operator=(const feed_attachment&) = delete;

  record_sink& sink() { return *publisher_; }
  // Sends what is queued (timed by the caller), then lets the reader catch
  // up with every message sent (at most 5 s) and stops it.
  void close() {
    publisher_->close();
    const uint64_t sent = publisher_->counters().messages_sent;
    const auto deadline = clock_type::now() + std::chrono::seconds(5);
    while (received_messages_.load() < sent && clock_type::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    stop_reader();
  }
  feed_counters counters() const { return publisher_->counters(); }
  uint64_t received_messages() const { return received_messages_.load(); }
  uint64_t received_bytes() const { return received_bytes_.load(); }

 private:
  void read() {
    zmq::message_t part;
    while (!stop_.load(std::memory_order_relaxed)) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) == 0) continue;
      while (socket_.recv(part, zmq::recv_flags::dontwait)) {
        received_bytes_.fetch_add(part.size(), std::memory_order_relaxed);
        if (!part.more()) received_messages_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  void stop_reader() {
    stop_.store(true);
    if (reader_.joinable()) reader_.join();
  }

  std::optional<feed_publisher> publisher_;
  zmq::context_t context_;
  zmq::socket_t socket_{context_, zmq::socket_type::sub};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> received_messages_{0};
  std::atomic<uint64_t> received_bytes_{0};
  std::thread reader_;
};

uint64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;
}

double seconds(clock_type::duration d) { return std::chrono::duration<double>(d).count(); }

// Reads every view and the first byte of every frame once, each queue on
// the CPU its worker will be pinned to, after the traffic is made and
// before any run. The traffic is far larger than the caches, so nothing of
// it is cached for a timed run; what this removes is a first-read cost
// (page faults, THP collapse) that otherwise made the first run of a
// process the slow one (figures in docs/PERFORMANCE.md).
void read_traffic_once(std::span<const std::span<const packet_view>> queues, bool pin) {
  std::vector<std::thread> readers;
  std::atomic<uint64_t> checksum{0};
  for (unsigned i = 0; i < queues.size(); ++i)
    readers.emplace_back([i, pin, q = queues[i], &checksum] {
      if (pin) pin_worker_thread(i);
      uint64_t sum = 0;
      for (const packet_view& v : q) sum += v.caplen ? v.data[0] : 0;
      checksum.fetch_add(sum, std::memory_order_relaxed);  // keeps the reads
    });
  for (std::thread& r : readers) r.join();
}

// What the kernel says it can give without swapping; 0 when unknown (then
// nothing is checked).
uint64_t mem_available_bytes() {
  std::ifstream in("/proc/meminfo");
  unsigned long long kb = 0;
  for (std::string line; std::getline(in, line);)
    if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kb) == 1) return kb * 1024;
  return 0;
}

std::string gigabytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GB", static_cast<double>(bytes) / 1e9);
  return buf;
}

unsigned thread_count(const bench_options& o) {
  return o.threads ? o.threads : std::max(1u, std::thread::hardware_concurrency());
}

// The packets a run meters: `prepared` of them are built in memory and
// replayed `loops` times, the last loop in part when `total` needs it.
// Views point into the generator's own arrays (on huge pages), not copies.
struct traffic {
  uint64_t total = 0;
  uint64_t prepared = 0;
  uint64_t loops = 1;
  uint64_t frame_bytes = 0;  // wire lengths of the prepared packets
  uint64_t flows = 0;        // per loop: truth (synthetic) or 0 (replay)
  uint32_t max_flows = 0;    // the engine's table, all shards
  std::unique_ptr<synthetic_traffic> synthetic;
  std::unique_ptr<replay_traffic> replay;

  std::span<const packet_view> all() const { return synthetic ? synthetic->packets() : replay->packets(); }
  std::span<const packet_view> queue(unsigned q) const { return synthetic ? synthetic->queue(q) : replay->queue(q); }
  unsigned queue_count() const { return synthetic ? synthetic->queue_count() : replay->queue_count(); }
  // Each queue's share of the first n packets of a loop.
  std::vector<size_t> queue_counts(size_t n) const {
    return synthetic ? synthetic->queue_counts(n) : replay->queue_counts(n);
  }
  void start_loop(uint64_t loop) {
    if (synthetic) synthetic->start_loop(loop);
    if (replay) replay->start_loop(loop);
  }
  uint64_t in_loop(uint64_t loop) const { return loop + 1 < loops ? prepared : total - prepared * (loops - 1); }
};

// The flow table's capacity (all shards), unless --max-flows sets it.
uint64_t table_flows(const bench_options& o, uint64_t total, uint64_t prepared, unsigned threads) {
  if (o.max_flows != 0) return o.max_flows;
  if (!o.replay.empty()) return 1u << 21;
  // Concurrent flows plus the churned ones that have not idled out yet;
  // with churn every loop starts `flows` new ones (start_loop).
  const double span_s = static_cast<double>(total) / o.packet_rate;
  double held = static_cast<double>(o.flows) + o.churn * std::min(span_s, o.idle_timeout_s);
  if (o.churn > 0 && prepared < total) {
    const double loop_s = static_cast<double>(prepared) / o.packet_rate;
    const double loops = std::ceil(static_cast<double>(total) / static_cast<double>(prepared));
    held += static_cast<double>(o.flows) * std::min(loops - 1, std::ceil(o.idle_timeout_s / loop_s));
  }
  // 2 % + 1024 per shard covers the hash's imbalance between shards, so
  // the bench measures memory per active flow, not headroom.
  return static_cast<uint64_t>(held * 1.02) + 1024ull * threads;
}

size_t tables_bytes(uint64_t max_flows, unsigned threads) {
  const auto per_shard = static_cast<uint32_t>(std::min<uint64_t>(max_flows / threads + 1, 0xffffffffu));
  return flow_table::memory_bytes_for(per_shard) * threads;
}

synthetic_config synthetic_for(const bench_options& o, unsigned threads) {
  synthetic_config c;
  c.flows = o.flows;
  if (o.size == "imix") {
    c.sizes = size_mix::imix;
  } else {
    c.frame_bytes = static_cast<uint32_t>(std::stoul(o.size));
    if (c.frame_bytes < 60 || c.frame_bytes > 9000) throw std::invalid_argument("--size must be 60..9000 or imix");
  }
  c.v6_share = o.v6_share;
  c.udp_share = o.udp_share;
  c.zipf_s = o.zipf;
  c.order = o.order == "slots" ? uniform_order::slots : uniform_order::shuffled;
  c.churn_per_sec = o.churn;
  c.packets_per_sec = o.packet_rate;
  c.queues = threads;
  return c;
}

// How many packets to build: all of them when they fit under --prepare (or
// kMaxPreparedPackets) and in memory, else as many whole uniform rounds as
// do, at least one round (`flows` packets). Throws, before anything is
// allocated, when even that does not fit beside the flow tables.
uint64_t plan_prepared(const bench_options& o, synthetic_config c, unsigned threads) {
  const uint64_t total = o.packets;
  const uint64_t least = std::min(total, o.flows);
  uint64_t prepared = std::min(total, std::max(o.prepare ? o.prepare : kMaxPreparedPackets, least));
  const auto need = [&](uint64_t packets) {
    c.packets = packets;
    const uint64_t tables = tables_bytes(table_flows(o, total, packets, threads), threads);
    return std::pair<uint64_t, uint64_t>{synthetic_traffic::memory_bytes_for(c), tables};
  };
  if (const uint64_t avail = mem_available_bytes(); avail != 0) {
    // Leave a quarter of what is free to everything else.
    while (prepared > least) {
      const auto [frames, tables] = need(prepared);
      if (frames + tables <= avail / 4 * 3) break;
      prepared = std::max(least, prepared / 4 * 3);
    }
    if (const auto [frames, tables] = need(prepared); frames + tables > avail) {
      throw std::runtime_error("this run needs " + gigabytes(frames + tables) + " of memory (flow tables " +
                               gigabytes(tables) + ", " + std::to_string(prepared) + " prepared packets " +
                               gigabytes(frames) + "), MemAvailable is " + gigabytes(avail));
    }
  }
  // Whole rounds, so every loop starts a round (uniform traffic).
  if (prepared < total && o.zipf == 0) prepared = std::max(least, prepared / o.flows * o.flows);
  return prepared;
}

traffic make_traffic(const bench_options& o, unsigned threads) {
  traffic t;
  t.total = o.packets;
  if (!o.replay.empty()) {
    replay_config rc;
    rc.path = o.replay;
    rc.packets = o.packets;
    rc.queues = threads;
    t.max_flows = static_cast<uint32_t>(std::min<uint64_t>(table_flows(o, 0, 0, threads), 0xffffffffu));
    // Whole passes over the file, as many as fit under --prepare and in
    // memory (a frame takes at most snaplen bytes, its views 66).
    rc.max_prepared = o.prepare ? o.prepare : kMaxPreparedPackets;
    if (const uint64_t avail = mem_available_bytes(); avail != 0) {
      const uint64_t tables = tables_bytes(t.max_flows, threads);
      const uint64_t budget = avail / 4 * 3 > tables ? avail / 4 * 3 - tables : 0;
      rc.max_prepared = std::max<uint64_t>(1, std::min<uint64_t>(rc.max_prepared, budget / (rc.snaplen + 16 + 66)));
    }
    t.replay = std::make_unique<replay_traffic>(replay_traffic::load(rc));
    t.frame_bytes = t.replay->frame_bytes();
    t.prepared = t.replay->packets().size();
    if (o.packets == 0) t.total = t.prepared;  // one pass
    t.loops = t.prepared ? (t.total + t.prepared - 1) / t.prepared : 1;
    return t;
  }
  synthetic_config c = synthetic_for(o, threads);
  c.packets = t.prepared = plan_prepared(o, c, threads);
  t.loops = t.prepared ? (t.total + t.prepared - 1) / t.prepared : 1;
  t.max_flows = static_cast<uint32_t>(std::min<uint64_t>(table_flows(o, t.total, t.prepared, threads), 0xffffffffu));
  t.synthetic = std::make_unique<synthetic_traffic>(synthetic_traffic::generate(c));
  t.frame_bytes = t.synthetic->totals().frame_bytes;
  t.flows = t.synthetic->totals().flows;
  return t;
}

// One timed run of a fresh engine over `t`: loop by loop, the engine's
// time summed (start_loop between loops is not timed).
int run_once(const bench_options& o, traffic& t, double gen_s, double* mpps_out = nullptr) {
  const unsigned threads = thread_count(o);
  const uint64_t packets = t.total;

  parallel_config pc;
  pc.threads = threads;
  pc.pin_threads = !o.no_pin;
  pc.decode_threads = o.decode_threads;
  pc.engine.table.idle_timeout_ns = static_cast<uint64_t>(o.idle_timeout_s * 1e9);
  pc.engine.table.max_flows = t.max_flows;
  pc.engine.hash_seed = o.hash_seed;

  counting_sink sink;
  std::optional<feed_attachment> feed;
  std::optional<tee_sink> tee;
  if (!o.publish.empty()) {
    feed.emplace(o.publish, o.feed_format);
    tee.emplace(sink, feed->sink());
  }
  parallel_engine engine(pc, tee ? static_cast<record_sink&>(*tee) : sink);
  t.start_loop(0);  // a --repeat run after a looped one

  // Warm-up (untimed): uniform synthetic traffic visits its flows round
  // robin, so the first `flows` packets create every flow once. Metering
  // them before the clock starts makes the timed run the steady state the
  // flow count names (lookups and updates of that many live flows); flow
  // creation has its own axis (--churn, the sweep's churn rows).
  const bool warm = !o.no_warmup && o.replay.empty() && o.zipf == 0 && o.churn == 0;
  const uint64_t warm_packets = warm ? std::min<uint64_t>(t.prepared, t.flows) : 0;
  const std::vector<size_t> warm_counts = t.queue_counts(warm_packets);
  if (warm_packets) {
    if (o.feed == "queue") {
      std::vector<span_source> warm_queues;
      for (unsigned q = 0; q < t.queue_count(); ++q) warm_queues.emplace_back(t.queue(q).first(warm_counts[q]));
      engine.run_per_queue(std::span<span_source>(warm_queues));
    } else {
      span_source w(t.all().first(warm_packets));
      engine.run(w);
    }
  }
  const uint64_t timed_packets = packets - warm_packets;

  clock_type::duration run_time{};
  std::vector<queue_worker_run> workers(threads);
  for (uint64_t loop = 0; loop < t.loops; ++loop) {
    t.start_loop(loop);
    const uint64_t n = t.in_loop(loop);
    const std::vector<size_t> ends = t.queue_counts(n);
    const auto start = clock_type::now();
    if (o.feed == "queue") {
      std::vector<span_source> queues;
      for (unsigned q = 0; q < t.queue_count(); ++q) {
        const size_t from = loop == 0 ? warm_counts[q] : 0;
        queues.emplace_back(t.queue(q).subspan(from, ends[q] - from));
      }
      engine.run_per_queue(std::span<span_source>(queues));
    } else {
      span_source src(t.all().subspan(loop == 0 ? warm_packets : 0, n - (loop == 0 ? warm_packets : 0)));
      engine.run(src);
    }
    run_time += clock_type::now() - start;
    if (o.feed == "queue") {
      const std::vector<queue_worker_run> last = engine.last_queue_run();
      for (size_t w = 0; w < last.size() && w < workers.size(); ++w) {
        workers[w].packets += last[w].packets;
        workers[w].ns += last[w].ns;
      }
    }
  }
  // Each queue worker's own rate: the run ends with the slowest one.
  std::vector<double> worker_mpps;
  std::string worker_text;
  if (o.feed == "queue") {
    for (const queue_worker_run& w : workers) {
      const double rate = w.ns ? static_cast<double>(w.packets) * 1e3 / static_cast<double>(w.ns) : 0.0;
      worker_mpps.push_back(rate);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", rate);
      worker_text += (worker_text.empty() ? "" : ", ") + std::string(buf);
    }
  }
  const size_t active = engine.active_flows();
  const auto finish_start = clock_type::now();
  engine.finish();
  const double finish_s = seconds(clock_type::now() - finish_start);
  // The publisher's flush after the engine is done: not part of the packet rate.
  double feed_close_s = 0;
  if (feed) {
    const auto close_start = clock_type::now();
    feed->close();
    feed_close_s = seconds(clock_type::now() - close_start);
  }

  const double run_s = seconds(run_time);
  const double total_s = run_s + finish_s;
  const double mpps = static_cast<double>(timed_packets) / run_s / 1e6;
  // Ethernet on the wire adds preamble + SFD (8), FCS (4) and the gap (12).
  const double frame_per_packet = static_cast<double>(t.frame_bytes) / static_cast<double>(std::max<uint64_t>(1, t.prepared));
  const double gbps = (frame_per_packet + 24.0) * static_cast<double>(timed_packets) * 8 / run_s / 1e9;
  const double ns_per_packet = run_s * 1e9 / static_cast<double>(std::max<uint64_t>(1, timed_packets));
  const drop_ledger ledger = engine.ledger();
  const double table_bytes = static_cast<double>(engine.table_memory_bytes());
  const double bytes_per_flow = table_bytes / static_cast<double>(std::max<uint64_t>(1, pc.engine.table.max_flows));
  const double bytes_per_active = table_bytes / static_cast<double>(std::max<size_t>(1, active));
  const uint64_t rss = peak_rss_bytes();
  const uint64_t sink_packets = sink.packets;

  if (o.json) {
    nlohmann::ordered_json j;
    j["mpps"] = mpps;
    j["mpps_per_core"] = mpps / threads;
    j["threads"] = threads;
    j["feed"] = o.feed;
    j["flows"] = t.flows;
    j["active_flows"] = active;
    j["packets"] = packets;
    j["prepared_packets"] = t.prepared;
    j["loops"] = t.loops;
    j["warmup_packets"] = warm_packets;
    j["size"] = o.size;
    j["v6_share"] = o.v6_share;
    j["zipf"] = o.zipf;
    j["order"] = order_name(o);
    j["churn_per_sec"] = o.churn;
    j["gbps_equivalent"] = gbps;
    j["ns_per_packet"] = ns_per_packet;
    j["ns_per_packet_per_core"] = ns_per_packet * threads;
    j["run_seconds"] = run_s;
    j["finish_seconds"] = finish_s;
    j["records"] = sink.records;
    j["record_packets"] = sink_packets;
    j["records_per_sec"] = static_cast<double>(sink.records) / total_s;
    j["table_bytes"] = table_bytes;
    j["table_bytes_per_flow"] = bytes_per_flow;
    j["table_bytes_per_active_flow"] = bytes_per_active;
    j["flows_evicted"] = ledger.flows_evicted();
    j["peak_rss_bytes"] = rss;
    j["generate_seconds"] = gen_s;
    j["worker_mpps"] = worker_mpps;
    j["ledger"] = ledger;
    if (feed) {
      const feed_counters fc = feed->counters();
      j["publish"] = {{"endpoint", o.publish},
                      {"format", o.feed_format},
                      {"records_sent", fc.records_sent},
                      {"messages_sent", fc.messages_sent},
                      {"export_dropped", fc.export_dropped()},
                      {"received_messages", feed->received_messages()},
                      {"received_bytes", feed->received_bytes()},
                      {"close_seconds", feed_close_s}};
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    if (o.replay.empty()) {
      std::printf("flower-bench: %llu packets, %llu flows, %u threads (%s feed), size %s, v6 %.0f%%, zipf %g, order %s, "
                  "churn %g/s\n",
                  static_cast<unsigned long long>(packets), static_cast<unsigned long long>(t.flows), threads,
                  o.feed.c_str(), o.size.c_str(), o.v6_share * 100, o.zipf, order_name(o), o.churn);
    } else {
      std::printf("flower-bench: %llu packets replayed from %s (%llu passes), %u threads (%s feed)\n",
                  static_cast<unsigned long long>(packets), o.replay.c_str(),
                  static_cast<unsigned long long>((packets + t.replay->file_packets() - 1) /
                                                  std::max<uint64_t>(1, t.replay->file_packets())),
                  threads, o.feed.c_str());
    }
    std::printf("  frames generated in %.2f s and read once before timing (not measured)\n", gen_s);
    if (t.loops > 1)
      std::printf("  looped       %llu prepared packets %llu times (%s; not timed between loops)\n",
                  static_cast<unsigned long long>(t.prepared), static_cast<unsigned long long>(t.loops),
                  !t.synthetic || t.synthetic->loops_make_new_flows() ? "new flows every loop"
                  : o.zipf == 0 && o.order != "slots" ? "every round a new order"
                                                      : "the same flows on");
    if (warm_packets)
      std::printf("  warm-up      %llu packets create the flows before timing (--no-warmup to time them)\n",
                  static_cast<unsigned long long>(warm_packets));
    std::printf("  throughput   %.2f Mpps (%.2f Mpps per core), %.2f Gbit/s equivalent\n", mpps, mpps / threads, gbps);
    std::printf("  cost         %.2f ns per packet (%.2f core-ns per packet), run %.3f s\n", ns_per_packet,
                ns_per_packet * threads, run_s);
    if (!worker_text.empty())
      std::printf("  workers      %s Mpps, each over its own queue and time (the run waits for the slowest)\n",
                  worker_text.c_str());
    std::printf("  records      %llu exported, %.2f M records/s (finish %.3f s)\n",
                static_cast<unsigned long long>(sink.records), static_cast<double>(sink.records) / total_s / 1e6,
                finish_s);
    std::printf("  flows        %zu active at end of run, %llu evicted; tables %.1f MB = %.1f B per slot, %.1f B per active flow\n",
                active, static_cast<unsigned long long>(ledger.flows_evicted()), table_bytes / 1e6, bytes_per_flow,
                bytes_per_active);
    std::printf("  not metered  %llu: decoder %llu, full rings %llu (ledger %s)\n",
                static_cast<unsigned long long>(ledger.decode_failed() + ledger.ring_dropped()),
                static_cast<unsigned long long>(ledger.decode_failed()),
                static_cast<unsigned long long>(ledger.ring_dropped()),
                ledger.reconciles() ? "reconciles" : "DOES NOT reconcile");
    if (feed) {
      const feed_counters fc = feed->counters();
      std::printf("  feed         %s %s: %llu records sent in %llu messages, %llu dropped; the SUB thread received "
                  "%llu messages (%.1f MB); flush after the run %.3f s\n",
                  o.feed_format.c_str(), o.publish.c_str(), static_cast<unsigned long long>(fc.records_sent),
                  static_cast<unsigned long long>(fc.messages_sent),
                  static_cast<unsigned long long>(fc.export_dropped()),
                  static_cast<unsigned long long>(feed->received_messages()),
                  static_cast<double>(feed->received_bytes()) / 1e6, feed_close_s);
    }
    std::printf("  peak RSS     %.1f MB (includes the prepared frames)\n", static_cast<double>(rss) / 1e6);
  }
  if (mpps_out) *mpps_out = mpps;
  return ledger.reconciles() && ledger.received == packets ? 0 : 1;
}

// Generates the traffic once, then --repeat runs, each a fresh engine over
// the same packets, printed as usual; with more than one, best, median and
// worst on stderr. On a shared machine the best run is the one least
// disturbed by other work. (Making the traffic again for every run would
// time nothing more: it is never in the cache when the clock starts. On a
// VM it is the slow part, since the host backs fresh memory page by page.)
int run_repeated(bench_options o) {
  if (o.packets == 0) o.packets = o.replay.empty() ? std::max<uint64_t>(4'000'000, 3 * o.flows) : 0;
  if (o.feed != "queue" && o.feed != "dispatch") throw std::invalid_argument("--feed must be queue or dispatch");
  const auto gen_start = clock_type::now();
  traffic t = make_traffic(o, thread_count(o));
  const double gen_s = seconds(clock_type::now() - gen_start);
  if (o.feed == "queue") {
    std::vector<std::span<const packet_view>> queues;
    for (unsigned q = 0; q < t.queue_count(); ++q) queues.push_back(t.queue(q));
    read_traffic_once(queues, !o.no_pin);
  } else {
    const std::span<const packet_view> all[1] = {t.all()};
    read_traffic_once(all, false);
  }
  std::vector<double> mpps;
  int rc = 0;
  for (unsigned r = 0; r < o.repeat; ++r) {
    double m = 0;
    rc |= run_once(o, t, gen_s, &m);
    std::fflush(stdout);
    mpps.push_back(m);
  }
  if (mpps.size() < 2) return rc;
  std::sort(mpps.begin(), mpps.end());
  const unsigned threads = thread_count(o);
  const double median = mpps.size() % 2 ? mpps[mpps.size() / 2]
                                        : (mpps[mpps.size() / 2 - 1] + mpps[mpps.size() / 2]) / 2;
  std::fprintf(stderr, "flower-bench: %zu runs: best %.2f Mpps (%.2f per core), median %.2f, worst %.2f\n", mpps.size(),
               mpps.back(), mpps.back() / threads, median, mpps.front());
  return rc;
}

// One word for popen's shell, whatever it holds.
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Each sweep point runs in a fresh process so peak RSS is its own. A point
// whose run fails (or prints no result) stops the sweep with an error: a
// row of zeros would plot as a measurement.
int run_sweep(const bench_options& o, const char* self) {
  std::FILE* out = std::fopen(o.sweep_out.c_str(), "w");
  if (!out) throw std::runtime_error("cannot write " + o.sweep_out + ": " + std::strerror(errno));
  std::fprintf(out, "kind\tflows\tchurn_per_sec\tthreads\tpackets\tmpps\tmpps_per_core\tns_per_packet\trecords_per_sec\t"
                    "table_bytes_per_flow\tpeak_rss_bytes\n");
  struct point {
    const char* kind;
    uint64_t flows;
    double churn;
  };
  std::vector<point> points;
  for (uint64_t f : o.sweep_flows) points.push_back({"flows", f, 0});
  for (double c : o.sweep_churn) points.push_back({"churn", kSweepChurnFlows, c});
  const std::string threads = o.threads ? std::to_string(o.threads) : "0";
  for (const point& p : points) {
    std::string cmd = shell_quote(self) + " --json --flows " + std::to_string(p.flows) + " --churn " +
                      std::to_string(p.churn) + " --threads " + threads + " --size " + shell_quote(o.size) +
                      " --v6-share " + std::to_string(o.v6_share) + " --udp-share " + std::to_string(o.udp_share) +
                      " --zipf " + std::to_string(o.zipf) + " --order " + o.order + " --packet-rate " + std::to_string(o.packet_rate) +
                      " --idle-timeout " + std::to_string(o.idle_timeout_s) + " --feed " + shell_quote(o.feed) +
                      " --decode-threads " + std::to_string(o.decode_threads) + (o.no_pin ? " --no-pin" : "") +
                      (o.no_warmup ? " --no-warmup" : "");
    if (o.packets) cmd += " --packets " + std::to_string(o.packets);
    if (o.prepare) cmd += " --prepare " + std::to_string(o.prepare);
    if (o.hash_seed) cmd += " --hash-seed " + std::to_string(*o.hash_seed);
    // Best of --repeat runs: on a shared machine the best run is the one
    // least disturbed by other work.
    nlohmann::json kept;
    double best = -1;
    for (unsigned r = 0; r < std::max(1u, o.repeat); ++r) {
      std::FILE* child = popen(cmd.c_str(), "r");
      if (!child) throw std::runtime_error("cannot run " + cmd);
      std::string run;
      char buf[4096];
      while (std::fgets(buf, sizeof buf, child)) run += buf;
      const int status = pclose(child);
      // The child prints one JSON object, or nothing when it failed.
      nlohmann::json result = nlohmann::json::parse(run, nullptr, /*allow_exceptions=*/false);
      if (status != 0 || !result.is_object() || !result.contains("mpps")) {
        std::fclose(out);
        // The child's own error went to our stderr; say which point it was.
        throw std::runtime_error("sweep point " + std::string(p.kind) + " flows=" + std::to_string(p.flows) +
                                 " churn=" + std::to_string(static_cast<uint64_t>(p.churn)) + " failed (" +
                                 (status == -1 ? "no exit status" : "exit status " + std::to_string(WEXITSTATUS(status))) +
                                 "); " + o.sweep_out + " holds the points before it");
      }
      const double mpps = result.value("mpps", 0.0);
      if (mpps > best) {
        best = mpps;
        kept = std::move(result);
      }
    }
    auto num = [&](const char* key) { return kept.value(key, 0.0); };
    std::fprintf(out, "%s\t%llu\t%.0f\t%.0f\t%.0f\t%.3f\t%.3f\t%.3f\t%.0f\t%.1f\t%.0f\n", p.kind,
                 static_cast<unsigned long long>(p.flows), p.churn, num("threads"), num("packets"), num("mpps"),
                 num("mpps_per_core"), num("ns_per_packet"), num("records_per_sec"), num("table_bytes_per_flow"),
                 num("peak_rss_bytes"));
    std::fflush(out);
    std::fprintf(stderr, "sweep %s flows=%llu churn=%.0f: %.2f Mpps per core\n", p.kind,
                 static_cast<unsigned long long>(p.flows), p.churn, num("mpps_per_core"));
  }
  std::fclose(out);
  std::fprintf(stderr, "wrote %s\n", o.sweep_out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bench_options o;
  CLI::App app{"flower-bench: synthetic or replayed traffic through the multi-core flow engine"};
  app.add_option("--flows", o.flows, "concurrently active flows")->check(CLI::PositiveNumber);
  app.add_option("--packets", o.packets, "packets to meter (0 = max(4M, 3 x flows); replay: loop to this many)");
  app.add_option("--prepare", o.prepare,
                 "packets built in memory at most (0 = 32Mi, fewer when memory is short; at least one per flow, or "
                 "one pass of --replay); a longer run loops over them off the clock, each round in a new order, "
                 "or with new flows every loop under --churn or --replay. A run whose smallest preparation does "
                 "not fit in memory is refused up front");
  app.add_option("--hash-seed", o.hash_seed,
                 "seed of the flow hash (default: random per run); records do not depend on it, only which "
                 "flows a full table evicts");
  app.add_option("--threads", o.threads, "worker threads = shards (0 = all cores)");
  app.add_option("--size", o.size, "frame bytes without FCS, or imix (64/576/1500 at 7:4:1)");
  app.add_option("--v6-share", o.v6_share, "fraction of IPv6 flows")->check(CLI::Range(0.0, 1.0));
  app.add_option("--udp-share", o.udp_share, "fraction of UDP flows (rest TCP)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--zipf", o.zipf, "flow popularity skew (0 = uniform)")->check(CLI::NonNegativeNumber);
  app.add_option("--order", o.order,
                 "uniform traffic comes in rounds of one packet per flow: random = a new random order each "
                 "round (flow entries touched at random, as by real traffic); slots = the same order each "
                 "round (entries walked as an array, the prefetcher's best case)")
      ->check(CLI::IsMember({"random", "slots"}));
  app.add_option("--churn", o.churn, "new flows per second of packet time")->check(CLI::NonNegativeNumber);
  app.add_option("--packet-rate", o.packet_rate, "packet-time rate of the synthetic timestamps (pps)")
      ->check(CLI::PositiveNumber);
  app.add_option("--idle-timeout", o.idle_timeout_s, "idle timeout, seconds of packet time");
  app.add_option("--max-flows", o.max_flows, "flow table capacity, all shards (0 = sized from flows and churn)");
  app.add_option("--replay", o.replay, "loop this pcap/pcapng instead of synthetic traffic");
  app.add_option("--feed", o.feed, "queue: one queue per core, run to completion (AF_XDP/RSS); "
                                   "dispatch: one source sharded by hash (pcap)");
  app.add_flag("--no-pin", o.no_pin, "do not pin worker threads to CPUs");
  app.add_flag("--no-warmup", o.no_warmup,
               "time flow creation too (default: uniform synthetic traffic creates its flows before the clock starts)");
  app.add_option("--decode-threads", o.decode_threads, "dispatch feed: threads reading and decoding (0 = auto)");
  app.add_option("--publish", o.publish,
                 "also hand the records to the ZeroMQ feed's publisher bound at ENDPOINT (tcp://ADDR:PORT or "
                 "ipc://PATH), read back by a SUB thread (docs/feed.md)")
      ->type_name("ENDPOINT");
  app.add_option("--feed-format", o.feed_format, "with --publish: protobuf or json")
      ->check(CLI::IsMember({"protobuf", "json"}));
  app.add_flag("--json", o.json, "print one JSON object");
  app.add_flag("--sweep", o.sweep, "Mpps per core vs concurrent flows (1k..10M) and vs new flows per second (1k..10M), "
               "each point a fresh process; writes --sweep-out");
  app.add_option("--sweep-out", o.sweep_out, "TSV written by --sweep (plot with bench/sweep-plot)");
  app.add_option("--sweep-flows", o.sweep_flows, "with --sweep, the concurrent-flow points (comma-separated)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  app.add_option("--sweep-churn", o.sweep_churn,
                 "with --sweep, the new-flows-per-second points at 100k concurrent flows (comma-separated)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  app.add_option("--repeat", o.repeat,
                 "runs of a fresh engine over the same traffic: best/median/worst on stderr; "
                 "with --sweep, runs per point, each in a fresh process (best kept)")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    if (!o.sweep) return run_repeated(o);
    // Each point sets its own flows, churn and table size.
    if (!o.replay.empty()) throw std::runtime_error("--sweep runs synthetic traffic: it does not take --replay");
    if (o.max_flows != 0) throw std::runtime_error("--sweep sizes each point's table: it does not take --max-flows");
    if (!o.publish.empty()) throw std::runtime_error("--sweep does not take --publish (bench/feed-overhead compares runs)");
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) throw std::runtime_error("cannot find my own executable");
    self[n] = 0;
    return run_sweep(o, self);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flower-bench: %s\n", e.what());
    return 1;
  }
}
