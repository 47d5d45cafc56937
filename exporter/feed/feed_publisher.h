#pragma once
// feed_publisher: the ZeroMQ feed's publisher (docs/feed.md), a record_sink
// that never makes the pipeline wait for the network.
//
//   feed_options o;
//   o.bind = {"tcp://127.0.0.1:5556"};            // and/or o.connect = {collector_endpoint("srv")}
//   o.curve.own = read_secret_key_file(...);       // optional CURVE (feed_curve.h)
//   feed_publisher pub(o);                          // binds/connects now; throws on failure
//   pub.wait_subscribers(1, std::chrono::seconds(5));   // optional: no slow-joiner loss
//   engine.run(source, pub);                        // consume(): copy into a queue, return
//   pub.publish_stats(ledger);                      // once per second, from the caller
//   pub.close();                                    // send what is queued, linger, stop
//   ledger.exporter_dropped = pub.counters().export_dropped();
//
// Threads: consume() is called by one producer thread (the pipeline's record
// thread); close() and wait_subscribers() by that thread too; publish_stats
// and counters() from any thread. The publisher's own thread owns the ZeroMQ
// socket: it drains the queue, batches up to batch_records records per
// message, encodes (feed_codec.h) and sends without blocking.
//
// Loss is counted, never waited for: a batch that does not fit in the queue
// is dropped whole (queue_dropped_records); a message the socket refuses at
// its send high-water mark (XPUB_NODROP: a subscriber's pipe is full) is
// dropped (hwm_dropped_*). Either way the topic's sequence number moves on,
// so subscribers see the gap. Memory is bounded by queue_records records
// plus, per subscriber, send_hwm messages of at most batch_records records.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "exporter/feed/feed_codec.h"
#include "exporter/feed/feed_curve.h"
#include "pipeline/drop_ledger.h"
#include "pipeline/flow_record.h"
#include "pipeline/spsc_ring.h"

namespace flower {

inline constexpr const char* kDefaultPublishEndpoint = "tcp://127.0.0.1:5556";
inline constexpr uint16_t kDefaultCollectorPort = 5557;

struct feed_options {
  std::vector<std::string> bind;     // endpoints to bind: tcp://ADDR:PORT, ipc://PATH
  std::vector<std::string> connect;  // collectors to connect to (they bind)
  feed_format format = feed_format::protobuf;
  std::string sensor_id;             // empty: the host name
  size_t queue_records = 1u << 16;   // the bounded queue between consume() and the sender
  size_t batch_records = 1024;       // at most this many records per message
  int send_hwm = 1000;               // messages queued per subscriber before refusals
  int linger_ms = 2000;              // at close: how long pending messages may still go out
  // For a file (-r), where nothing is lost to waiting: consume() waits for
  // room in the queue and a send waits up to send_timeout_ms for a full
  // subscriber. A send that times out is dropped and counted, and later
  // sends do not wait until one is accepted again (a stuck subscriber
  // cannot hold the run for a timeout per message).
  bool wait_when_full = false;
  int send_timeout_ms = 1000;
  // CURVE (feed_curve.h): with a key pair the bound endpoints are CURVE
  // servers admitting only curve.allowed_z85 (a ZAP handler on its own
  // thread), the connected ones CURVE clients of curve.server_public_z85.
  curve_options curve;
};

// "HOST[:PORT]" (IPv6 as [ADDR]:PORT) -> "tcp://HOST:PORT", port 5557 by default.
std::string collector_endpoint(const std::string& host_port);
// The host name (the default sensor id).
std::string default_sensor_id();

class feed_publisher final : public record_sink {
 public:
  explicit feed_publisher(feed_options options);  // throws std::runtime_error naming the endpoint
  ~feed_publisher() override;                       // close()
  feed_publisher(const feed_publisher&) = delete;
  feed_publisher& operator=(const feed_publisher&) = delete;

  // Copies `records` into the queue, or drops them all if they do not fit.
  void consume(std::span<const flow_record> records) noexcept override;

  // Waits until `n` subscribers cover the "flow" topic (an XPUB subscription
  // to "flow" or a prefix of it) or `timeout` passes; returns how many there
  // are. Call before the first consume() so a short run loses nothing.
  size_t wait_subscribers(size_t n, std::chrono::milliseconds timeout);

  // Queues a "stats" message with this ledger, the rates since the previous
  // call and the publisher's counters; it goes out after the records queued
  // before the call. A snapshot not yet sent is replaced.
  void publish_stats(const drop_ledger& ledger, std::span<const queue_counters> queues = {});

  // Sends everything queued, lets ZeroMQ flush for at most linger_ms, stops
  // the thread and closes the socket. Idempotent; consume() after close()
  // counts its records as dropped.
  void close();

  // Switch to waiting (as wait_when_full) from now on. A live sensor calls it
  // when it stops, before the final flush: the flows still open then leave
  // in one burst, far larger than the queue, and there is nothing left to
  // keep up with; a send still gives up after send_timeout_ms for a stuck
  // subscriber. Called by the producer thread.
  void wait_from_now_on() noexcept { waiting_.store(true, std::memory_order_relaxed); }

  feed_counters counters() const noexcept;
  // CURVE handshakes of bound endpoints admitted / refused (key not allowed).
  uint64_t curve_accepted() const noexcept { return zap_counters_.accepted.load(std::memory_order_relaxed); }
  uint64_t curve_refused() const noexcept { return zap_counters_.refused.load(std::memory_order_relaxed); }
  // The endpoints bound (a tcp port 0 or wildcard resolved), in order.
  const std::vector<std::string>& bound_endpoints() const noexcept { return bound_; }
  const std::string& sensor_id() const noexcept { return options_.sensor_id; }
  uint64_t run_id() const noexcept { return run_id_; }

 private:
  struct socket_state;  // ZeroMQ context and socket, owned by the sender thread once it runs

  void run() noexcept;
  size_t send_flows();
  void send_stats();
  void read_subscriptions();
  bool send_message(std::string_view topic, const std::string& payload);
  void wake() noexcept;

  feed_options options_;
  std::atomic<bool> waiting_{false};  // options_.wait_when_full, or since wait_from_now_on()
  uint64_t run_id_;
  std::vector<std::string> bound_;
  zap_counters zap_counters_;  // outlives the authenticator in zmq_
  std::unique_ptr<socket_state> zmq_;

  spsc_ring<flow_record> queue_;
  std::atomic<bool> sender_idle_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> stats_pending_{false};
  std::atomic<bool> sender_failed_{false};  // the sender thread stopped on an error
  bool closed_ = false;
  bool stalled_ = false;  // sender: the last waiting send timed out

  // Counters: written by one thread each, read by any.
  std::atomic<uint64_t> records_queued_{0};
  std::atomic<uint64_t> queue_dropped_{0};
  std::atomic<uint64_t> records_sent_{0};
  std::atomic<uint64_t> messages_sent_{0};
  std::atomic<uint64_t> hwm_dropped_messages_{0};
  std::atomic<uint64_t> hwm_dropped_records_{0};
  std::atomic<uint64_t> subscribers_{0};

  // Sender-thread state.
  uint64_t flow_seq_ = 0;
  uint64_t flow_offset_ = 0;
  uint64_t stats_seq_ = 0;

  // publish_stats -> sender, and subscriber count -> wait_subscribers.
  std::mutex mutex_;
  std::condition_variable subscribers_changed_;
  std::optional<feed_stats> pending_stats_;
  uint64_t stats_after_records_ = 0;  // sent once the sender took this many records
  feed_envelope pending_stats_env_;
  drop_ledger previous_ledger_;
  uint64_t previous_stats_ns_ = 0;
  uint64_t previous_records_sent_ = 0;

  std::thread thread_;
};

}  // namespace flower
