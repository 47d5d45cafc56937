#include "exporter/feed/feed_publisher.h"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <zmq.hpp>

namespace flower {
namespace {

uint64_t now_ns() noexcept {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// The sender's idle wait is also bounded, so a missed wake-up costs at most this.
constexpr long kIdlePollMs = 100;
// Messages sent per turn before subscriptions and stats get their turn.
constexpr int kMessagesPerTurn = 64;

class unique_fd {
 public:
  explicit unique_fd(int fd) : fd_(fd) {}
  ~unique_fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace

// Declared in construction order; destroyed in reverse: the socket, then
// the CURVE authenticator (its own socket), then the context (whose
// termination waits at most the socket's linger).
struct feed_publisher::socket_state {
  zmq::context_t context{1};
  std::unique_ptr<zap_authenticator> zap;  // CURVE with bound endpoints only
  zmq::socket_t socket{context, zmq::socket_type::xpub};
  unique_fd wake{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
};

std::string collector_endpoint(const std::string& host_port) {
  std::string host = host_port;
  std::string port = std::to_string(kDefaultCollectorPort);
  if (!host.empty() && host.front() == '[') {  // [IPv6]:PORT
    const size_t close = host.find(']');
    if (close == std::string::npos) throw std::invalid_argument("bad collector address " + host_port);
    if (close + 1 < host.size()) {
      if (host[close + 1] != ':') throw std::invalid_argument("bad collector address " + host_port);
      port = host.substr(close + 2);
    }
    host = host.substr(0, close + 1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string::npos) {
    if (host.find(':') != colon) throw std::invalid_argument("IPv6 collector address needs [ ]: " + host_port);
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.empty() || port.empty() || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) == 0 || std::stoul(port) > 65535)
    throw std::invalid_argument("bad collector address " + host_port);
  return "tcp://" + host + ":" + port;
}

std::string default_sensor_id() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "flower";
  return name;
}

feed_publisher::feed_publisher(feed_options options)
    : options_(std::move(options)),
      run_id_(random_hash_seed()),
      queue_(options_.queue_records) {
  waiting_.store(options_.wait_when_full, std::memory_order_relaxed);
  if (options_.sensor_id.empty()) options_.sensor_id = default_sensor_id();
  if (options_.batch_records == 0) options_.batch_records = 1;
  if (options_.bind.empty() && options_.connect.empty())
    throw std::invalid_argument("feed: no endpoint to bind or connect");
  zmq_ = std::make_unique<socket_state>();
  if (zmq_->wake.get() < 0) throw std::system_error(errno, std::generic_category(), "feed: eventfd");
  zmq::socket_t& s = zmq_->socket;
  try {
    s.set(zmq::sockopt::sndhwm, options_.send_hwm);
    s.set(zmq::sockopt::linger, options_.linger_ms);
    // Refuse (EAGAIN) rather than silently drop at the high-water mark, so
    // every loss is counted; and report every (un)subscription.
    s.set(zmq::sockopt::xpub_nodrop, 1);
    s.set(zmq::sockopt::xpub_verboser, 1);
    // Used only by waiting sends (send_flags::none); non-blocking ones never wait.
    s.set(zmq::sockopt::sndtimeo, options_.send_timeout_ms);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error(std::string("feed: socket options: ") + e.what());
  }
  if (options_.curve.enabled() && !options_.bind.empty())
    zmq_->zap = std::make_unique<zap_authenticator>(zmq_->context, options_.curve.allowed_z85, zap_counters_);
  try {
    if (!options_.bind.empty()) apply_curve_server(s, options_.curve);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error(std::string("feed: CURVE server options: ") + e.what());
  }
  for (const std::string& endpoint : options_.bind) {
    try {
      s.bind(endpoint);
      bound_.push_back(s.get(zmq::sockopt::last_endpoint));
    } catch (const zmq::error_t& e) {
      throw std::runtime_error("feed: cannot bind " + endpoint + ": " + e.what());
    }
  }
  try {
    // After the binds, which keep the server role.
    if (!options_.connect.empty()) apply_curve_client(s, options_.curve);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error(std::string("feed: CURVE client options: ") + e.what());
  }
  for (const std::string& endpoint : options_.connect) {
    try {
      s.connect(endpoint);
    } catch (const zmq::error_t& e) {
      throw std::runtime_error("feed: cannot connect to " + endpoint + ": " + e.what());
    }
  }
  previous_stats_ns_ = now_ns();
  // The socket moves to the sender thread here; thread start orders it.
  // The thread starts with every signal blocked, as libzmq's own threads
  // do: SIGINT/SIGTERM go to the threads that act on them, and its zmq_poll
  // is never interrupted.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  thread_ = std::thread([this] { run(); });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

feed_publisher::~feed_publisher() { close(); }

void feed_publisher::consume(std::span<const flow_record> records) noexcept {
  const size_t n = records.size();
  if (n == 0) return;
  if (closed_ || n > queue_.capacity() || sender_failed_.load(std::memory_order_relaxed)) {
    queue_dropped_.fetch_add(n, std::memory_order_relaxed);
    return;
  }
  if (queue_.free_space_for(n) < n) {
    if (!waiting_.load(std::memory_order_relaxed)) {
      queue_dropped_.fetch_add(n, std::memory_order_relaxed);
      return;
    }
    while (queue_.free_space_for(n) < n) {
      if (sender_failed_.load(std::memory_order_relaxed)) {
        queue_dropped_.fetch_add(n, std::memory_order_relaxed);
        return;
      }
      wake();
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  queue_.push(records);
  records_queued_.fetch_add(n, std::memory_order_relaxed);
  wake();
}

// With the sender's mirror image in run(): either the sender sees the new
// items, or this sees the sender idle and writes the eventfd (both sides
// store, full fence, then load).
void feed_publisher::wake() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sender_idle_.load(std::memory_order_relaxed) && sender_idle_.exchange(false)) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(zmq_->wake.get(), &one, sizeof one);
  }
}

size_t feed_publisher::wait_subscribers(size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  subscribers_changed_.wait_for(lock, timeout, [&] { return subscribers_.load() >= n; });
  return subscribers_.load();
}

void feed_publisher::publish_stats(const drop_ledger& ledger, std::span<const queue_counters> queues) {
  const uint64_t now = now_ns();
  feed_stats s;
  s.ledger = ledger;
  s.queues.assign(queues.begin(), queues.end());
  s.feed = counters();
  {
    std::lock_guard lock(mutex_);
    const double seconds = static_cast<double>(now - previous_stats_ns_) / 1e9;
    auto rate = [&](uint64_t now_count, uint64_t then_count) {
      return seconds > 0 && now_count >= then_count ? static_cast<double>(now_count - then_count) / seconds : 0.0;
    };
    const drop_ledger& p = previous_ledger_;
    s.rates.received_per_s = rate(ledger.received, p.received);
    s.rates.metered_per_s = rate(ledger.metered, p.metered);
    s.rates.records_per_s = rate(ledger.records_exported(), p.records_exported());
    s.rates.dropped_per_s =
        rate(ledger.source_dropped + ledger.ring_dropped(), p.source_dropped + p.ring_dropped());
    s.rates.feed_records_per_s = rate(s.feed.records_sent, previous_records_sent_);
    pending_stats_env_.interval_start_ns = previous_stats_ns_;
    pending_stats_env_.interval_end_ns = now;
    previous_ledger_ = ledger;
    previous_stats_ns_ = now;
    previous_records_sent_ = s.feed.records_sent;
    pending_stats_ = std::move(s);
    stats_after_records_ = records_queued_.load(std::memory_order_relaxed);
    stats_pending_.store(true, std::memory_order_release);
  }
  wake();
}

void feed_publisher::close() {
  if (closed_) return;
  closed_ = true;
  stop_.store(true, std::memory_order_release);
  wake();
  if (thread_.joinable()) thread_.join();
  // Only left if the sender stopped on an error: lost with the socket.
  hwm_dropped_records_.fetch_add(queue_.size(), std::memory_order_relaxed);
  zmq_.reset();  // socket, then context: waits at most linger_ms for the peers
}

feed_counters feed_publisher::counters() const noexcept {
  feed_counters c;
  c.records_queued = records_queued_.load(std::memory_order_relaxed);
  c.records_sent = records_sent_.load(std::memory_order_relaxed);
  c.messages_sent = messages_sent_.load(std::memory_order_relaxed);
  c.queue_dropped_records = queue_dropped_.load(std::memory_order_relaxed);
  c.hwm_dropped_messages = hwm_dropped_messages_.load(std::memory_order_relaxed);
  c.hwm_dropped_records = hwm_dropped_records_.load(std::memory_order_relaxed);
  c.queue_capacity = queue_.capacity();
  c.queue_depth = queue_.size();
  c.subscribers = subscribers_.load(std::memory_order_relaxed);
  return c;
}

void feed_publisher::run() noexcept {
  try {
    flow_encoder encoder(options_.format);
    std::string payload;
    zmq_pollitem_t items[2] = {
        {zmq_->socket.handle(), 0, ZMQ_POLLIN, 0},
        {nullptr, zmq_->wake.get(), ZMQ_POLLIN, 0},
    };
    for (;;) {
      const bool stopping = stop_.load(std::memory_order_acquire);
      size_t sent = 0;
      for (int i = 0; i < kMessagesPerTurn; ++i) {
        std::span<flow_record> batch = queue_.peek(options_.batch_records);
        if (batch.empty()) break;
        feed_envelope env;
        env.sensor_id = options_.sensor_id;
        env.run_id = run_id_;
        env.topic = kTopicFlow;
        env.seq = ++flow_seq_;
        env.record_offset = flow_offset_;
        flow_offset_ += batch.size();
        encoder.encode(env, batch, payload);
        if (send_message(kTopicFlow, payload)) {
          records_sent_.fetch_add(batch.size(), std::memory_order_relaxed);
        } else {
          hwm_dropped_records_.fetch_add(batch.size(), std::memory_order_relaxed);
        }
        queue_.release(batch.size());
        ++sent;
      }
      if (stats_pending_.load(std::memory_order_acquire)) send_stats();  // once the records before it went
      read_subscriptions();
      if (sent != 0) continue;
      if (stopping) break;  // stop was seen before a pass that found nothing queued

      sender_idle_.store(true, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (!queue_.empty() || stats_pending_.load(std::memory_order_relaxed) ||
          stop_.load(std::memory_order_relaxed)) {
        sender_idle_.store(false, std::memory_order_relaxed);
        continue;
      }
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(kIdlePollMs));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
      }
      sender_idle_.store(false, std::memory_order_relaxed);
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t count;
        [[maybe_unused]] ssize_t n = ::read(zmq_->wake.get(), &count, sizeof count);
      }
    }
  } catch (const std::exception& e) {
    // Nothing is sent any more; consume() keeps counting what it queues and
    // close() still returns. Not expected: ZeroMQ reports refusals as EAGAIN.
    sender_failed_.store(true, std::memory_order_relaxed);
    std::fprintf(stderr, "flower: feed publisher stopped: %s\n", e.what());
  }
}

bool feed_publisher::send_message(std::string_view topic, const std::string& payload) {
  zmq::socket_t& s = zmq_->socket;
  // Waiting sends (wait_when_full) block up to SNDTIMEO; after one timed out,
  // sends stay non-blocking until one is accepted.
  const bool waiting = waiting_.load(std::memory_order_relaxed);
  const zmq::send_flags wait = waiting && !stalled_ ? zmq::send_flags::none : zmq::send_flags::dontwait;
  zmq::send_result_t r = s.send(zmq::const_buffer(topic.data(), topic.size()), zmq::send_flags::sndmore | wait);
  if (r) {
    // The payload frame cannot be refused once the first was accepted: the
    // high-water mark is checked per message, not per frame.
    r = s.send(zmq::const_buffer(payload.data(), payload.size()), zmq::send_flags::dontwait);
  }
  if (!r) {
    if (waiting) stalled_ = true;
    hwm_dropped_messages_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  stalled_ = false;
  messages_sent_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void feed_publisher::send_stats() {
  feed_stats s;
  feed_envelope env;
  {
    std::lock_guard lock(mutex_);
    if (!pending_stats_ || flow_offset_ < stats_after_records_) return;
    s = std::move(*pending_stats_);
    pending_stats_.reset();
    env = pending_stats_env_;
    stats_pending_.store(false, std::memory_order_relaxed);
  }
  env.sensor_id = options_.sensor_id;
  env.run_id = run_id_;
  env.topic = kTopicStats;
  env.seq = ++stats_seq_;
  std::string payload;
  encode_stats(options_.format, env, s, payload);
  send_message(kTopicStats, payload);
}

void feed_publisher::read_subscriptions() {
  zmq::message_t m;
  bool changed = false;
  while (zmq_->socket.recv(m, zmq::recv_flags::dontwait)) {
    if (m.size() < 1) continue;
    const auto* p = static_cast<const char*>(m.data());
    const std::string_view prefix(p + 1, m.size() - 1);
    if (!kTopicFlow.starts_with(prefix)) continue;
    uint64_t n = subscribers_.load(std::memory_order_relaxed);
    if (p[0] == 1) ++n;
    else if (p[0] == 0 && n > 0) --n;
    else continue;
    subscribers_.store(n, std::memory_order_relaxed);
    changed = true;
  }
  if (changed) {
    std::lock_guard lock(mutex_);  // so a waiter between its check and its wait is not missed
    subscribers_changed_.notify_all();
  }
}

}  // namespace flower
