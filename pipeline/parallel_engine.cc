// parallel_engine: shard workers on dedicated threads, fed either by a
// oneTBB parallel_pipeline (single queue: read -> decode+hash -> dispatch)
// or by their own queue (multi queue: run to completion).

#include "pipeline/parallel_engine.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <oneapi/tbb/parallel_pipeline.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>
#include <thread>

#include "pipeline/spsc_ring.h"

namespace flower {
namespace {

constexpr uint64_t kLiveTickNs = 1'000'000'000ull;  // idle shards expire / flush once a second

uint64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t wall_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spin briefly, then yield, then sleep: a waiting side costs little CPU on a
// box where shard workers share cores with the decode stage.
class backoff {
 public:
  void wait() noexcept {
    if (n_ < 64) {
      cpu_relax();
    } else if (n_ < 256) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    if (n_ < 1u << 30) ++n_;
  }
  void reset() noexcept { n_ = 0; }
  bool sleeping() const noexcept { return n_ >= 256; }

 private:
  unsigned n_ = 0;
};

// Records from all shards merge into the caller's sink, one thread at a
// time. The lock is taken once per record batch (record_buffer capacity),
// never per packet.
class serial_sink final : public record_sink {
 public:
  explicit serial_sink(record_sink& inner) : inner_(inner) {}
  void consume(std::span<const flow_record> records) override {
    std::lock_guard<std::mutex> lock(mutex_);
    inner_.consume(records);
  }

 private:
  std::mutex mutex_;
  record_sink& inner_;
};

// TBB passes tokens between threads with synchronisation inside libtbb,
// which ThreadSanitizer cannot see (the library is not instrumented). A
// handoff restates that ordering in our code: acquire when a filter starts
// on a batch, release when it is done. Two uncontended atomics per batch
// per filter; the values read are never used.
class handoff {
 public:
  void enter() noexcept { (void)n_.load(std::memory_order_acquire); }
  void leave() noexcept { n_.fetch_add(1, std::memory_order_acq_rel); }

 private:
  std::atomic<uint64_t> n_{0};
};

// The filter objects (and the lambdas' captures in them) are built on the
// calling thread and read on TBB workers; that handoff is a task spawn in
// libtbb, which TSan cannot see, so under TSan we restate it on a fixed
// address. No code in other builds.
#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
char tsan_filters_built;
inline void filters_built() noexcept { __tsan_release(&tsan_filters_built); }
inline void filter_entered() noexcept { __tsan_acquire(&tsan_filters_built); }
#else
inline void filters_built() noexcept {}
inline void filter_entered() noexcept {}
#endif

// Top 32 bits of the hash scaled onto [0, n) without a division.
inline uint32_t shard_index(uint64_t hash, uint32_t n) noexcept {
  return static_cast<uint32_t>(((hash >> 32) * n) >> 32);
}

}  // namespace

void pin_worker_thread(unsigned index) noexcept {
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(index % cpus, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);  // best effort
}

namespace {

// Every shard hashes with the one seed the engine resolved.
engine_config shard_config(const engine_config& total, unsigned shards, uint64_t seed) {
  engine_config c = total;
  c.table.max_flows = std::max<uint32_t>(1, total.table.max_flows / shards);
  c.hash_seed = seed;
  return c;
}

}  // namespace

// One shard: its flow state, its output buffer, its inbound ring and the
// counters only its worker writes. Aligned so no two shards share a line.
struct alignas(kCacheLine) shard_state {
  shard_state(const engine_config& config, record_sink& sink, size_t ring_slots)
      : shard(config), out(sink), ring(ring_slots) {}

  flow_shard shard;
  record_buffer out;
  spsc_ring<decoded_packet> ring;  // single-queue mode: dispatcher -> worker
  // Multi-queue mode: written by this shard's worker only.
  uint64_t received = 0;
  queue_worker_run last_run;
  std::array<uint64_t, kDecodeStatusCount> status{};
  std::array<packet_view, kPipelineBatch> views;
  std::array<decoded_packet, kPipelineBatch> decoded;
};

// One parallel_pipeline token: a source batch and what decoding made of it.
struct front_batch {
  explicit front_batch(unsigned shards) : begin(shards + 1), cursor(shards) {}
  size_t n = 0;
  std::array<packet_view, kPipelineBatch> views;
  std::array<decoded_packet, kPipelineBatch> decoded;
  std::array<decode_status, kPipelineBatch> status;
  std::array<uint32_t, kPipelineBatch> shard;
  // ok packets grouped by shard, in arrival order; kNoteCopy marks a
  // note-only copy for the outer flow's shard (at most one per packet).
  std::array<uint16_t, 2 * kPipelineBatch> order;
  std::vector<uint32_t> begin;                 // order[begin[s] .. begin[s+1]) go to shard s
  std::vector<uint32_t> cursor;
  handoff edge;  // orders the filters' accesses to this token
};

struct parallel_engine::impl {
  impl(const parallel_config& c, record_sink& inner)
      : config(c),
        n(c.threads ? c.threads : std::max(1u, std::thread::hardware_concurrency())),
        seed(effective_hash_seed(c.engine)),
        hash(hash_key::from_seed(seed)),
        sink(inner),
        ring_full(n, 0) {
    const engine_config per_shard = shard_config(c.engine, n, seed);
    shards.reserve(n);
    for (unsigned i = 0; i < n; ++i) shards.push_back(std::make_unique<shard_state>(per_shard, sink, c.ring_slots));
    tokens.reserve(kMaxBatchesInFlight);
    for (size_t i = 0; i < kMaxBatchesInFlight; ++i) tokens.push_back(std::make_unique<front_batch>(n));
  }

  parallel_config config;
  unsigned n;
  uint64_t seed;  // of the shard choice and of every shard's table and fragment cache
  hash_key hash;
  serial_sink sink;
  std::vector<std::unique_ptr<shard_state>> shards;
  std::vector<std::unique_ptr<front_batch>> tokens;

  // Single-queue mode: written only by the pipeline's serial stages.
  uint64_t received = 0;
  // The clock a single shard would keep over the whole input (the
  // dispatcher sees every packet in order): the end-of-input time, the
  // same for every shard count.
  detail::clock_guard clock;
  bool fed_single = false;
  std::array<uint64_t, kDecodeStatusCount> status{};
  std::vector<uint64_t> ring_full;

  std::atomic<bool> feed_done{false};
  bool finished = false;
  handoff input_edge, dispatch_edge;  // order successive calls of each serial filter

  void decode_and_group(front_batch& b) const noexcept;
  void dispatch(front_batch& b) noexcept;
  void drain(shard_state& s, unsigned index) noexcept;
  void run_queue(shard_state& s, unsigned index, source_ref src, const std::atomic<bool>& stop) noexcept;
  void live_idle(shard_state& s, uint64_t& last_tick) noexcept;
};

constexpr uint16_t kNoteCopy = 0x8000;
constexpr size_t kDecodedHotBytes = offsetof(decoded_packet, frag_id);
static_assert(kPipelineBatch < kNoteCopy);

// The shard owning the outer flow of a packet that carries an outer
// first-fragment note, if not the packet's own: later fragments of that
// outer datagram carry the outer key and go there.
inline bool note_goes_elsewhere(const decoded_packet& d, uint32_t own, unsigned n, const hash_key& hash,
                                uint32_t& other) noexcept {
  if (!d.has_outer_first_fragment) return false;
  other = shard_index(shard_hash(d.outer_first_fragment.key, hash), n);
  return other != own;
}

// Parallel stage: decode, hash, then a counting sort of packet indexes by
// shard so the dispatcher copies each shard's packets in one run.
void parallel_engine::impl::decode_and_group(front_batch& b) const noexcept {
  const decode_options& opt = config.engine.decode;
  for (size_t i = 0; i < b.n; ++i) b.status[i] = decode_packet(b.views[i], opt, b.decoded[i]);  // sets ts_ns
  std::fill(b.begin.begin(), b.begin.end(), 0u);
  for (size_t i = 0; i < b.n; ++i) {
    if (b.status[i] != decode_status::ok) continue;
    b.shard[i] = shard_index(shard_hash(b.decoded[i].key, hash), n);
    ++b.begin[b.shard[i] + 1];
    uint32_t other;
    if (note_goes_elsewhere(b.decoded[i], b.shard[i], n, hash, other)) [[unlikely]]
      ++b.begin[other + 1];
  }
  for (unsigned s = 0; s < n; ++s) {
    b.begin[s + 1] += b.begin[s];
    b.cursor[s] = b.begin[s];
  }
  for (size_t i = 0; i < b.n; ++i) {
    if (b.status[i] != decode_status::ok) continue;
    b.order[b.cursor[b.shard[i]]++] = static_cast<uint16_t>(i);
    uint32_t other;
    if (note_goes_elsewhere(b.decoded[i], b.shard[i], n, hash, other)) [[unlikely]]
      b.order[b.cursor[other]++] = static_cast<uint16_t>(i | kNoteCopy);
  }
}

// Serial stage, in source order: count, then copy each shard's packets into
// its ring. Offline waits for room; live drops what does not fit.
void parallel_engine::impl::dispatch(front_batch& b) noexcept {
  received += b.n;
  uint64_t newest = 0;
  size_t ok = 0;
  for (size_t i = 0; i < b.n; ++i) {
    ++status[static_cast<size_t>(b.status[i])];
    if (b.status[i] == decode_status::ok) {
      newest = std::max(newest, b.decoded[i].ts_ns);
      ++ok;
    }
  }
  if (ok != 0) {
    if (clock.plausible(newest)) [[likely]] {
      clock.advance(newest, ok, [](size_t) { return uint64_t{0}; });  // one compare, no rescan
    } else {
      for (size_t i = 0; i < b.n; ++i)
        if (b.status[i] == decode_status::ok) clock.observe(b.decoded[i].ts_ns);
    }
  }
  for (unsigned s = 0; s < n; ++s) {
    spsc_ring<decoded_packet>& ring = shards[s]->ring;
    uint32_t at = b.begin[s];
    const uint32_t end = b.begin[s + 1];
    backoff wait;
    while (at < end) {
      std::span<decoded_packet> slots = ring.reserve(end - at);
      if (slots.empty()) {
        if (config.live) {
          for (; at < end; ++at) ring_full[s] += (b.order[at] & kNoteCopy) == 0;  // copies are not packets
          break;
        }
        wait.wait();
        continue;
      }
      for (size_t k = 0; k < slots.size(); ++k) {
        const uint16_t o = b.order[at + k];
        const decoded_packet& d = b.decoded[o & ~kNoteCopy];
        if (d.frag == fragment_kind::none && !d.has_outer_first_fragment) [[likely]] {
          // The first cache line is all that is read of such a packet.
          std::memcpy(static_cast<void*>(&slots[k]), &d, kDecodedHotBytes);
        } else {
          slots[k] = d;
          if (o & kNoteCopy) slots[k].note_only = true;
        }
      }
      ring.commit(slots.size());
      at += static_cast<uint32_t>(slots.size());
    }
  }
}

// Live only: at most once a second, expire by wall-clock time and hand the
// buffered records on, so quiet shards and slow record rates still export.
void parallel_engine::impl::live_idle(shard_state& s, uint64_t& last_tick) noexcept {
  const uint64_t now = wall_ns();
  if (now - last_tick < kLiveTickNs) return;
  last_tick = now;
  s.shard.tick(now, s.out);
  s.out.flush();
}

// Shard worker in single-queue mode: drain the ring in batches, in place.
void parallel_engine::impl::drain(shard_state& s, unsigned index) noexcept {
  if (config.pin_threads) pin_worker_thread(index);
  backoff idle;
  uint64_t batches = 0;
  uint64_t last_tick = wall_ns();
  for (;;) {
    std::span<decoded_packet> batch = s.ring.peek(kPipelineBatch);
    if (!batch.empty()) {
      s.shard.process(batch, s.out);
      s.ring.release(batch.size());
      idle.reset();
      // Live: a busy shard still hands its records on about once a second.
      if (config.live && (++batches & 63) == 0) live_idle(s, last_tick);
      continue;
    }
    if (feed_done.load(std::memory_order_acquire)) {
      if (s.ring.empty()) break;
      continue;
    }
    if (config.live && idle.sleeping()) {
      s.out.flush();
      live_idle(s, last_tick);
    }
    idle.wait();
  }
  s.out.flush();
}

// Shard worker in multi-queue mode: pull, decode, meter; no handoff at all.
void parallel_engine::impl::run_queue(shard_state& s, unsigned index, source_ref src,
                                      const std::atomic<bool>& stop) noexcept {
  if (config.pin_threads) pin_worker_thread(index);
  const uint64_t start_ns = monotonic_ns();
  const uint64_t received_before = s.received;
  const decode_options& opt = config.engine.decode;
  backoff idle;
  uint64_t batches = 0;
  uint64_t last_tick = wall_ns();
  while (!stop.load(std::memory_order_relaxed)) {
    packet_batch batch;
    if (src.borrow_batch != nullptr) {
      batch = src.borrow_batch(src.ctx, s.views.size());
    } else {
      batch = {s.views.data(), src.next_batch(src.ctx, s.views)};
    }
    const size_t got = batch.size();
    if (got == 0) {
      if (!config.live) break;
      if (idle.sleeping()) live_idle(s, last_tick);
      idle.wait();
      continue;
    }
    idle.reset();
    s.received += got;
    s.shard.process_frames(batch, opt, s.status, s.decoded.data(), s.out);
    if (config.live && (++batches & 63) == 0) live_idle(s, last_tick);
  }
  s.out.flush();
  s.last_run = {s.received - received_before, monotonic_ns() - start_ns};
}

parallel_engine::parallel_engine(const parallel_config& config, record_sink& sink)
    : impl_(std::make_unique<impl>(config, sink)) {}

parallel_engine::~parallel_engine() = default;

unsigned parallel_engine::shards() const noexcept { return impl_->n; }

uint64_t parallel_engine::hash_seed() const noexcept { return impl_->seed; }

namespace {
// Joins on scope exit so an exception from the front end cannot leave
// joinable threads behind (std::terminate).
struct thread_group {
  std::vector<std::thread> threads;
  std::atomic<bool>* done = nullptr;
  ~thread_group() {
    if (done) done->store(true, std::memory_order_release);
    for (std::thread& t : threads)
      if (t.joinable()) t.join();
  }
};
}  // namespace

void parallel_engine::run_single(source_ref src) {
  impl& m = *impl_;
  m.fed_single = true;
  m.feed_done.store(false, std::memory_order_relaxed);
  thread_group workers;
  workers.done = &m.feed_done;
  for (unsigned i = 0; i < m.n; ++i)
    workers.threads.emplace_back([&m, i] { m.drain(*m.shards[i], i); });

  // Filter 1 (serial, in order): the next source batch into the next token.
  // Tokens leave the last filter in input order too, so when batch `seq` is
  // read, the token of batch seq - kMaxBatchesInFlight is free again.
  size_t seq = 0;
  auto read_batch = [&](tbb::flow_control& fc) -> front_batch* {
    filter_entered();
    m.input_edge.enter();
    front_batch& b = *m.tokens[seq % kMaxBatchesInFlight];
    b.edge.enter();
    backoff idle;
    while (!stop_.load(std::memory_order_relaxed)) {
      b.n = src.next_batch(src.ctx, b.views);
      if (b.n != 0) {
        ++seq;
        b.edge.leave();
        m.input_edge.leave();
        return &b;
      }
      if (!m.config.live) break;  // offline: 0 is the end of the input
      idle.wait();
    }
    m.input_edge.leave();
    fc.stop();
    return nullptr;
  };
  // Filter 2 (parallel): decode, hash, group by shard.
  auto decode_batch = [&](front_batch* b) -> front_batch* {
    filter_entered();
    b->edge.enter();
    m.decode_and_group(*b);
    b->edge.leave();
    return b;
  };
  // Filter 3 (serial, in order): count, copy into the shard rings.
  auto dispatch_batch = [&](front_batch* b) {
    filter_entered();
    m.dispatch_edge.enter();
    b->edge.enter();
    m.dispatch(*b);
    b->edge.leave();
    m.dispatch_edge.leave();
  };
  const tbb::filter<void, void> chain =
      tbb::make_filter<void, front_batch*>(tbb::filter_mode::serial_in_order, read_batch) &
      tbb::make_filter<front_batch*, front_batch*>(tbb::filter_mode::parallel, decode_batch) &
      tbb::make_filter<front_batch*, void>(tbb::filter_mode::serial_in_order, dispatch_batch);
  // No more arena slots than the machine has cores: TBB would not fill them
  // (it warns on stderr), and more decoders than cores only contend.
  const int wanted = static_cast<int>(m.config.decode_threads ? m.config.decode_threads : m.n);
  tbb::task_arena arena(std::max(1, std::min(wanted, tbb::info::default_concurrency())));
  filters_built();
  arena.execute([&] { tbb::parallel_pipeline(kMaxBatchesInFlight, chain); });
  // The calling thread reads the serial filters' counters after this.
  m.input_edge.enter();
  m.dispatch_edge.enter();
  // thread_group's destructor sets feed_done and joins the drained workers.
}

void parallel_engine::run_queues(std::span<const source_ref> queues) {
  impl& m = *impl_;
  if (queues.size() != m.n) throw std::invalid_argument("run_per_queue: one queue per shard required");
  thread_group workers;
  for (unsigned i = 0; i < m.n; ++i)
    workers.threads.emplace_back([&m, i, q = queues[i], this] { m.run_queue(*m.shards[i], i, q, stop_); });
}

void parallel_engine::finish() {
  impl& m = *impl_;
  if (m.finished) return;
  m.finished = true;
  // The end-of-input time: the clock over the whole input when it came
  // through the dispatcher (what one shard would have; a shard's own clock
  // saw only its share), else the latest shard clock. Every shard then ends
  // what is due by that time with its own reason, as on one core.
  for (auto& s : m.shards) s->shard.end_of_input();
  uint64_t now = 0;
  if (m.fed_single) {
    m.clock.finish();
    now = m.clock.now_ns();
  } else {
    for (auto& s : m.shards) now = std::max(now, s->shard.now_ns());
  }
  for (auto& s : m.shards) {
    s->shard.finish_at(now, s->out);
    s->out.flush();
  }
}

std::vector<queue_worker_run> parallel_engine::last_queue_run() const {
  std::vector<queue_worker_run> runs;
  for (const auto& s : impl_->shards) runs.push_back(s->last_run);
  return runs;
}

engine_counters parallel_engine::counters() const {
  const impl& m = *impl_;
  engine_counters c;
  c.received = m.received;
  c.status = m.status;
  for (const auto& s : m.shards) {
    c.received += s->received;
    for (size_t i = 0; i < kDecodeStatusCount; ++i) c.status[i] += s->status[i];
    const flow_table_counters& t = s->shard.table().counters();
    c.metered += t.packets;
    c.table.packets += t.packets;
    c.table.flows_created += t.flows_created;
    c.table.records_exported += t.records_exported;
    for (size_t r = 0; r < 6; ++r) c.table.by_reason[r] += t.by_reason[r];
    const fragment_counters& f = s->shard.fragments().counters();
    c.fragments.first += f.first;
    c.fragments.resolved += f.resolved;
    c.fragments.orphans += f.orphans;
    c.time_jumps += s->shard.time_jumps();
  }
  return c;
}

drop_ledger parallel_engine::ledger() const {
  drop_ledger l = drop_ledger::from_engine(counters());
  l.ring_full = impl_->ring_full;
  return l;
}

size_t parallel_engine::table_memory_bytes() const noexcept {
  size_t b = 0;
  for (const auto& s : impl_->shards) b += s->shard.table().memory_bytes();
  return b;
}

size_t parallel_engine::active_flows() const noexcept {
  size_t n = 0;
  for (const auto& s : impl_->shards) n += s->shard.table().size();
  return n;
}

}  // namespace flower
