// flow_table: dense entry pool + open-addressing index. docs/flow-table.md
// describes the layout, the expiry rules and the eviction approximation.
//
// Pool: exactly max_flows entries of 96 bytes. Entries [0, high_water) have
// been used; a free entry has key.ip_version == 0 and links the free list
// through first_ns. Index: cache-line buckets of 8 slots {tag, entry + 1}
// (0 = empty), 2 slots per flow, home bucket from the hash's high half,
// linear probing by bucket, deletion by backward shift (no tombstones). Both
// arrays are anonymous mappings, so they start zeroed (= empty) and only
// touched pages become resident.

#include "pipeline/flow_table.h"

#include "pipeline/detail/frame_prefetch.h"
#include "pipeline/detail/key_hash.h"

#include <sys/mman.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cerrno>
#include <system_error>

namespace flower {
namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
constexpr uint8_t kTcp = 6, kIcmp = 1, kIcmpv6 = 58;
constexpr size_t kAhead = 8;           // pipeline distance between lookup stages, packets
constexpr size_t kRingMask = 31;       // pending ring: holds 2 * kAhead + 1 packets
static_assert(2 * kAhead < kRingMask + 1);
constexpr uint32_t kEvictSample = 16;  // consecutive entries examined per eviction
constexpr uint64_t kSweepPeriodNs = kNsPerSec;
constexpr uint64_t kNever = uint64_t{1} << 62;  // a disabled timeout, in ns

// One cache line of the index: 8 slots, tags first so one pair of vector
// compares finds a tag. A flow lives in its home bucket unless that was full
// when it arrived; then in the first later bucket with room (so every bucket
// from home up to the flow's own is full: lookups stop at a bucket with a
// free slot).
constexpr uint32_t kBucketSlots = 8;
constexpr uint32_t kFullBucket = (1u << kBucketSlots) - 1;
struct alignas(64) index_bucket {
  uint32_t tag[kBucketSlots];     // low 32 bits of key_hash; 0 in an empty slot
  uint32_t entry1[kBucketSlots];  // pool index + 1; 0 = empty slot
};
static_assert(sizeof(index_bucket) == 64);

// Bit s set where words[s] == v, for the 8 words of one half of a bucket.
inline uint32_t equal_mask(const uint32_t (&words)[kBucketSlots], uint32_t v) noexcept {
#if defined(__SSE2__)
  const __m128i x = _mm_set1_epi32(static_cast<int>(v));
  const __m128i lo = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(words)), x);
  const __m128i hi = _mm_cmpeq_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(words + 4)), x);
  return static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(lo)) | _mm_movemask_ps(_mm_castsi128_ps(hi)) << 4);
#else
  uint32_t m = 0;
  for (uint32_t s = 0; s < kBucketSlots; ++s) m |= uint32_t{words[s] == v} << s;
  return m;
#endif
}

// Bit s set where slot s holds `tag` (an empty slot holds tag 0, so a
// caller checks entry1 too).
inline uint32_t tag_matches(const index_bucket& b, uint32_t tag) noexcept { return equal_mask(b.tag, tag); }

// Bit s set where slot s is in use.
inline uint32_t used_slots(const index_bucket& b) noexcept { return ~equal_mask(b.entry1, 0) & kFullBucket; }

// One flow in 96 bytes, so an entry always spans exactly two cache lines of
// the page-aligned pool (96 k mod 64 is 0 or 32). Per-direction arrays are
// indexed by 0 = initiator -> responder (fwd), 1 = responder -> initiator
// (rev). The small fields ride in the top bits of the octet counters (the
// accessors below); a counter that would run into them ends the record
// early as `active`, like the u32 packet counters. The SPIs, needed only by
// ESP/AH flows, live in a side array (`spis`), valid while kMetaHasSpi is set.
struct flow_entry {
  flow_key key;          // canonical order; ip_version 0 = free entry
  uint64_t first_ns;     // record start (free entry: next free + 1)
  uint64_t last_ns;
  uint64_t bytes[2];     // bits 0-55 IP octets, 56-63 OR of TCP flags
  uint64_t frame[2];     // bits 0-47 frame octets; [0] 48-63 ICMP type/code; [1] 48-55 meta bits
  uint32_t packets[2];
};
static_assert(sizeof(flow_entry) == 96, "entry size is part of the 128 B/flow budget");

constexpr uint64_t kBytesMask = (uint64_t{1} << 56) - 1;  // IP octet counter
constexpr uint64_t kFrameMask = (uint64_t{1} << 48) - 1;  // frame octet counter
constexpr uint8_t kMetaInitiatorIsB = 0x01;  // the initiator is canonical endpoint b
constexpr uint8_t kMetaHasSpi = 0x02;        // spis[entry] holds this record's SPIs
constexpr int kMetaTunnelShift = 2;          // tunnel_kind in bits 2-4
static_assert(static_cast<int>(tunnel_kind::erspan) < 8, "tunnel_kind must fit 3 bits");

inline uint8_t tcp_flags_of(const flow_entry& e, int d) noexcept { return static_cast<uint8_t>(e.bytes[d] >> 56); }
inline uint64_t ip_octets(const flow_entry& e, int d) noexcept { return e.bytes[d] & kBytesMask; }
inline uint64_t frame_octets(const flow_entry& e, int d) noexcept { return e.frame[d] & kFrameMask; }
inline uint16_t icmp_of(const flow_entry& e) noexcept { return static_cast<uint16_t>(e.frame[0] >> 48); }
inline void set_icmp(flow_entry& e, uint16_t v) noexcept { e.frame[0] = (e.frame[0] & kFrameMask) | uint64_t{v} << 48; }
inline uint8_t meta_of(const flow_entry& e) noexcept { return static_cast<uint8_t>(e.frame[1] >> 48); }
inline void set_meta(flow_entry& e, uint8_t m) noexcept { e.frame[1] = (e.frame[1] & kFrameMask) | uint64_t{m} << 48; }
inline bool initiator_is_b(const flow_entry& e) noexcept { return (meta_of(e) & kMetaInitiatorIsB) != 0; }
inline tunnel_kind tunnel_of(const flow_entry& e) noexcept {
  return static_cast<tunnel_kind>((meta_of(e) >> kMetaTunnelShift) & 7);
}

// Word by word from both keys: copying them into local arrays first made GCC
// go through the stack with 16-byte stores and 8-byte reloads.
inline bool keys_equal(const flow_key& x, const flow_key& y) noexcept {
  const auto* a = reinterpret_cast<const uint8_t*>(&x);
  const auto* b = reinterpret_cast<const uint8_t*>(&y);
  using detail::load64;
  return ((load64(a) ^ load64(b)) | (load64(a + 8) ^ load64(b + 8)) | (load64(a + 16) ^ load64(b + 16)) |
          (load64(a + 24) ^ load64(b + 24)) | (load64(a + 32) ^ load64(b + 32))) == 0;
}

// The table's canonical order and key_hash in registers, branch-free since
// a packet's direction is a coin toss to the predictor, and hashed from the
// words just computed (re-reading the key would stall on store forwarding).
// The order compares the address words as native integers (second word
// first, where an IPv4-mapped address differs), then the ports: any fixed
// total order lets both directions meet, and this one needs no byte swaps.
// It is private to the table: records are oriented initiator -> responder.
// Returns whether the endpoints were swapped.
inline bool canonical_hash(const flow_key& in, flow_key& out, uint64_t& hash, const hash_key& key) noexcept {
  static_assert(sizeof(flow_key) == 40);
  const auto* src = reinterpret_cast<const uint8_t*>(&in);
  uint64_t w0 = detail::load64(src), w1 = detail::load64(src + 8);
  uint64_t w2 = detail::load64(src + 16), w3 = detail::load64(src + 24);
  uint64_t w4 = detail::load64(src + 32);
  const auto lo = static_cast<uint32_t>(w4);  // port_a | port_b << 16 (little endian)
  const bool ports_gt = (lo & 0xffff) > (lo >> 16);
  // (w1:w0) against (w3:w2) as 128-bit numbers: a compare and a
  // subtract-with-borrow, where word-by-word tests took a dozen more.
  using detail::uint128;
  const uint128 addr_a = uint128{w1} << 64 | w0, addr_b = uint128{w3} << 64 | w2;
  const bool swap = (addr_a > addr_b) | ((addr_a == addr_b) & ports_gt);
  const uint64_t m = 0 - static_cast<uint64_t>(swap);
  const uint64_t x0 = (w0 ^ w2) & m, x1 = (w1 ^ w3) & m;
  w0 ^= x0, w2 ^= x0, w1 ^= x1, w3 ^= x1;
  const uint32_t rot = lo >> 16 | lo << 16;
  w4 ^= (lo ^ rot) & static_cast<uint32_t>(m);
  // Five 8-byte stores straight from registers: later 8-byte loads of the
  // key forward from them (a wider copy through the stack did not).
  auto* dst = reinterpret_cast<uint8_t*>(&out);
  std::memcpy(dst, &w0, 8);
  std::memcpy(dst + 8, &w1, 8);
  std::memcpy(dst + 16, &w2, 8);
  std::memcpy(dst + 24, &w3, 8);
  std::memcpy(dst + 32, &w4, 8);
  hash = detail::hash5(w0, w1, w2, w3, w4, key);
  return swap;
}

inline uint32_t fastrange(uint32_t x, uint32_t n) noexcept {
  return static_cast<uint32_t>((uint64_t{x} * n) >> 32);
}

inline bool is_icmp(const flow_entry& e) noexcept { return e.key.proto == kIcmp || e.key.proto == kIcmpv6; }

inline bool record_empty(const flow_entry& e) noexcept { return (e.packets[0] | e.packets[1]) == 0; }

inline bool tcp_ended(const flow_entry& e) noexcept {
  return e.key.proto == kTcp &&
         (((tcp_flags_of(e, 0) & tcp_flags_of(e, 1) & kFin) != 0) ||
          (((tcp_flags_of(e, 0) | tcp_flags_of(e, 1)) & kRst) != 0));
}

constexpr size_t kHugePage = size_t{2} << 20;

// Owner of one anonymous mapping of `count` zeroed T.
template <typename T>
class mapped_array {
 public:
  mapped_array(size_t count, bool huge_pages) : bytes_(count * sizeof(T)), mapped_(bytes_) {
    // With huge pages, an array of a quarter huge page or more is mapped as
    // whole 2 MiB pages on a 2 MiB boundary (map 2 MiB more, unmap the
    // ends): THP backs only aligned 2 MiB ranges, and a 1 MiB pool for 10k
    // flows on 4 KiB pages costs a TLB miss per packet. The rounding is at
    // most one huge page per array, and counts only once touched.
    const bool align = huge_pages && bytes_ >= kHugePage / 4;
    if (align) mapped_ = (bytes_ + kHugePage - 1) / kHugePage * kHugePage;
    const size_t span = align ? mapped_ + kHugePage : mapped_;
    void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "flow table: mmap");
    auto* base = static_cast<char*>(p);
    if (align) {
      const size_t head = (kHugePage - reinterpret_cast<uintptr_t>(base) % kHugePage) % kHugePage;
      if (head != 0) (void)munmap(base, head);
      if (span > head + mapped_) (void)munmap(base + head + mapped_, span - head - mapped_);
      base += head;
    }
    if (huge_pages) (void)madvise(base, mapped_, MADV_HUGEPAGE);  // advisory; fine to fail
    data_ = reinterpret_cast<T*>(base);
  }
  ~mapped_array() { munmap(data_, mapped_); }
  mapped_array(const mapped_array&) = delete;
  mapped_array& operator=(const mapped_array&) = delete;

  T& operator[](size_t i) noexcept { return data_[i]; }
  const T& operator[](size_t i) const noexcept { return data_[i]; }
  T* data() noexcept { return data_; }
  size_t bytes() const noexcept { return bytes_; }
  // Give the pages back; they read as zero again on the next touch.
  void zero() noexcept { (void)madvise(data_, mapped_, MADV_DONTNEED); }

 private:
  T* data_ = nullptr;
  size_t bytes_;   // what the table uses
  size_t mapped_;  // bytes_, or rounded up to whole huge pages
};

}  // namespace

struct flow_table::impl {
  impl(const flow_table_config& c, service_ports p)
      : cfg(c),
        ports(std::move(p)),
        max_flows(std::max<uint32_t>(c.max_flows, 1)),
        buckets(static_cast<uint32_t>((2 * uint64_t{max_flows} + kBucketSlots - 1) / kBucketSlots)),
        hkey(hash_key::from_seed(c.hash_seed)),
        pool(max_flows, c.huge_pages),
        index(buckets, c.huge_pages),
        spis(max_flows, false) {}

  // One cache line, so the ring index is a shift.
  struct alignas(64) pending {
    flow_key key;  // canonical
    uint32_t tag;
    uint32_t home;
    uint32_t hint;  // entry whose index tag matched in stage 2, or UINT32_MAX
    bool swapped;  // the packet was sent by canonical endpoint b
  };

  flow_table_config cfg;
  // Timeouts as offsets that never overflow a packet time: a disabled one
  // (0 in the config) becomes ~146 years.
  uint64_t idle_ns = cfg.idle_timeout_ns ? cfg.idle_timeout_ns : kNever;
  uint64_t active_ns = cfg.active_timeout_ns ? cfg.active_timeout_ns : kNever;
  uint64_t soonest_end_ns = std::min(idle_ns, cfg.tcp_linger_ns);  // nothing ends sooner after a packet
  service_ports ports;
  uint32_t max_flows;
  uint32_t buckets;  // index buckets: 2 slots per flow, so at most half are used
  hash_key hkey;     // the per-run seed folded into the hash constants
  mapped_array<flow_entry> pool;
  mapped_array<index_bucket> index;
  mapped_array<std::array<uint32_t, 2>> spis;  // per entry, by direction; see kMetaHasSpi
  uint32_t high_water = 0;  // entries [0, high_water) have been handed out
  uint32_t free_head = 0;   // first free entry + 1, 0 = none
  uint32_t live = 0;
  uint32_t evict_cursor = 0;
  uint32_t sweep_cursor = 0;
  uint64_t last_sweep_ns = 0;
  flow_table_counters counters;
  std::array<pending, kRingMask + 1> ring;  // update()'s software pipeline
  std::array<decoded_packet, kRingMask + 1> slots;  // update_frames(): the packets in that pipeline

  // --- index -------------------------------------------------------------

  // A key's place: its tag (low half of key_hash) and home bucket (high half).
  // The bucket is not derived from the tag so that tags in one bucket share
  // no bits and a tag match is almost always the key.
  static uint32_t tag_of(uint64_t hash) noexcept { return static_cast<uint32_t>(hash); }
  uint32_t home_of_hash(uint64_t hash) const noexcept { return fastrange(static_cast<uint32_t>(hash >> 32), buckets); }
  uint32_t home_of_entry(uint32_t entry) const noexcept { return home_of_hash(key_hash(pool[entry].key, hkey)); }
  uint32_t next(uint32_t b) const noexcept { return b + 1 == buckets ? 0 : b + 1; }

  // The entry holding `key`, or UINT32_MAX. Probing stops after the first
  // bucket with a free slot.
  [[gnu::noinline]] uint32_t find(const pending& p) const noexcept {
    for (uint32_t b = p.home;; b = next(b)) {
      const index_bucket& k = index[b];
      for (uint32_t m = tag_matches(k, p.tag); m != 0; m &= m - 1) {
        const uint32_t e1 = k.entry1[__builtin_ctz(m)];
        if (e1 != 0 && keys_equal(pool[e1 - 1].key, p.key)) return e1 - 1;
      }
      if (used_slots(k) != kFullBucket) return UINT32_MAX;
    }
  }

  [[gnu::noinline]] void index_insert(uint32_t tag, uint32_t home, uint32_t entry) noexcept {
    uint32_t b = home;
    uint32_t used;
    while ((used = used_slots(index[b])) == kFullBucket) b = next(b);
    const int s = __builtin_ctz(~used);
    index[b].tag[s] = tag;
    index[b].entry1[s] = entry + 1;
  }

  // Remove the slot that points at `entry`, then keep every flow reachable:
  // while the hole's bucket was full, flows after it may have passed it on
  // their way from home, so the first one whose home is not after the hole
  // moves into it and leaves a hole of its own (backward shift by bucket).
  void index_erase(uint32_t entry) noexcept {
    const uint64_t hash = key_hash(pool[entry].key, hkey);
    uint32_t hole_bucket = home_of_hash(hash);
    int hole_slot;
    for (;; hole_bucket = next(hole_bucket)) {
      const uint32_t m = equal_mask(index[hole_bucket].entry1, entry + 1);
      if (m != 0) {
        hole_slot = __builtin_ctz(m);
        break;
      }
    }
    bool hole_was_full = used_slots(index[hole_bucket]) == kFullBucket;
    for (uint32_t j = next(hole_bucket); hole_was_full; j = next(j)) {
      index_bucket& k = index[j];
      const uint32_t used = used_slots(k);
      for (uint32_t m = used; m != 0; m &= m - 1) {
        const int s = __builtin_ctz(m);
        const uint32_t h = home_of_entry(k.entry1[s] - 1);
        // It must stay unless its home lies cyclically in (hole, j].
        const bool stays = hole_bucket <= j ? (hole_bucket < h && h <= j) : (hole_bucket < h || h <= j);
        if (stays) continue;
        index[hole_bucket].tag[hole_slot] = k.tag[s];
        index[hole_bucket].entry1[hole_slot] = k.entry1[s];
        hole_bucket = j;
        hole_slot = s;
        break;
      }
      // A bucket with room was never passed: nothing beyond it came from
      // before it. (If a flow moved, `j` now holds the hole and this asks
      // whether it was full before the move.)
      hole_was_full = used == kFullBucket;
    }
    index[hole_bucket].tag[hole_slot] = 0;
    index[hole_bucket].entry1[hole_slot] = 0;
  }

  // --- pool --------------------------------------------------------------

  void release(uint32_t entry) noexcept {
    flow_entry& e = pool[entry];
    e.key.ip_version = 0;
    e.first_ns = free_head;
    free_head = entry + 1;
    --live;
  }

  // Export (if it holds packets) and remove a flow entirely.
  void remove(uint32_t entry, end_reason reason, record_buffer& out) noexcept {
    export_record(pool[entry], reason, out);
    index_erase(entry);
    release(entry);
  }

  // A free entry, evicting the least recently seen of a sample when full.
  [[gnu::noinline]] uint32_t allocate(record_buffer& out) noexcept {
    uint32_t entry;
    if (free_head != 0) {
      entry = free_head - 1;
      free_head = static_cast<uint32_t>(pool[entry].first_ns);
    } else if (high_water < max_flows) {
      entry = high_water++;
    } else {
      entry = evict_cursor;
      for (uint32_t i = 1; i < kEvictSample && i < max_flows; ++i) {
        uint32_t c = evict_cursor + i;
        if (c >= max_flows) c -= max_flows;
        if (pool[c].last_ns < pool[entry].last_ns) entry = c;
      }
      evict_cursor += std::min(kEvictSample, max_flows);
      if (evict_cursor >= max_flows) evict_cursor -= max_flows;
      ++counters.evictions;
      export_record(pool[entry], end_reason::evicted, out);
      index_erase(entry);
      --live;
    }
    ++live;
    return entry;
  }

  // --- records -----------------------------------------------------------

  void fill_record(const flow_entry& e, end_reason reason, flow_record& r) const noexcept {
    r.key = e.key;
    if (initiator_is_b(e)) r.key.swap_endpoints();  // orient initiator -> responder
    const bool has_spi = (meta_of(e) & kMetaHasSpi) != 0;
    const size_t entry = static_cast<size_t>(&e - &pool[0]);
    for (int d = 0; d < 2; ++d) {
      direction_counters& c = d == 0 ? r.fwd : r.rev;
      c.packets = e.packets[d];
      c.bytes = ip_octets(e, d);
      c.frame_bytes = frame_octets(e, d);
      c.tcp_flags = tcp_flags_of(e, d);
      c.spi = has_spi ? spis[entry][d] : 0;
    }
    r.first_ns = e.first_ns;
    r.last_ns = e.last_ns;
    r.icmp_type_code = icmp_of(e);
    r.tunnel = tunnel_of(e);
    r.reason = reason;
  }

  [[gnu::noinline]] void export_record(const flow_entry& e, end_reason reason, record_buffer& out) noexcept {
    if (record_empty(e)) return;  // its packets went out with the previous record
    flow_record r;
    fill_record(e, reason, r);
    out.push(r);
    ++counters.records_exported;
    ++counters.by_reason[static_cast<size_t>(reason)];
  }

  // Start the next record of a continuing flow (active timeout, counter
  // limit): orientation stays, counters restart.
  static void restart_record(flow_entry& e, uint64_t start_ns) noexcept {
    e.first_ns = start_ns;
    e.bytes[0] = e.bytes[1] = 0;  // octets and TCP flags
    e.frame[0] &= ~kFrameMask;    // keeps the ICMP type/code
    e.frame[1] &= ~kFrameMask;
    e.packets[0] = e.packets[1] = 0;
    set_meta(e, meta_of(e) & ~kMetaHasSpi);  // the SPIs restart as 0
  }

  // A new flow for this key: orientation by service port, else first sender
  // (the TCP SYN rule is applied by `account`).
  void start_flow(flow_entry& e, const pending& p, const decoded_packet& d) noexcept {
    e.key = p.key;
    e.first_ns = e.last_ns = d.ts_ns;
    e.bytes[0] = e.bytes[1] = 0;
    e.packets[0] = e.packets[1] = 0;
    const bool svc_a = ports.is_service(p.key.proto, p.key.port_a);
    const bool svc_b = ports.is_service(p.key.proto, p.key.port_b);
    const bool init_b = svc_a != svc_b ? svc_a : p.swapped;
    e.frame[0] = 0;  // no ICMP type/code yet
    e.frame[1] = uint64_t{init_b ? kMetaInitiatorIsB : uint8_t{0}} << 48;  // tunnel none, no SPI
    ++counters.flows_created;
  }

  // A counter would overflow: export what the record holds, continue.
  [[gnu::noinline]] void split_record(flow_entry& e, uint64_t now, record_buffer& out) noexcept {
    export_record(e, end_reason::active, out);
    restart_record(e, now);
  }

  // Add one packet to its flow's current record.
  [[gnu::always_inline]] void account(flow_entry& e, const pending& p, const decoded_packet& d,
                                       record_buffer& out) noexcept {
    int dir = p.swapped == initiator_is_b(e) ? 0 : 1;
    const uint8_t flags = d.tcp_flags;
    // The SYN test first: it is almost always false, where the protocol is
    // a coin toss to the branch predictor in mixed TCP/UDP traffic.
    if ((flags & kSyn) && e.key.proto == kTcp && !((e.bytes[0] | e.bytes[1]) & (uint64_t{kSyn} << 56))) {
      // The SYN sender is the initiator (a SYN-ACK's receiver, if that is
      // the first handshake packet we see): re-orient if needed.
      const int want = (flags & kAck) ? 1 : 0;
      if (dir != want) swap_directions(e), dir = want;
    }
    // Against fixed headroom rather than this packet's sizes (both are u32),
    // in one branch: the counters are far from their limits. An octet
    // counter is near when its top bit is set (2^55 IP octets, 2^47 frame
    // octets): then 2^55 or 2^47 of room remain, more than any u32 size,
    // and one shift tests it.
    static_assert(kBytesMask >> 55 == 1 && kFrameMask >> 47 == 1);
    const unsigned near_limit = unsigned{e.packets[dir] >= cfg.max_record_packets} |
                                static_cast<unsigned>(((e.bytes[dir] >> 55) | (e.frame[dir] >> 47)) & 1);
    if (near_limit != 0) [[unlikely]]
      split_record(e, d.ts_ns, out);
    if (record_empty(e)) {
      e.first_ns = e.last_ns = d.ts_ns;
      if (is_icmp(e) && dir == 0) set_icmp(e, d.icmp_type_code);
    } else {
      e.first_ns = std::min(e.first_ns, d.ts_ns);
      e.last_ns = std::max(e.last_ns, d.ts_ns);
      // Predictable tests first: `dir` is a coin toss for the branch
      // predictor; the first, almost never true, spares the other two.
      if (e.packets[0] == 0 && is_icmp(e) && dir == 0)
        set_icmp(e, d.icmp_type_code);
    }
    ++e.packets[dir];
    e.bytes[dir] = (e.bytes[dir] + d.ip_bytes) | uint64_t{flags} << 56;  // no carry: checked above
    e.frame[dir] += d.frame_bytes;
    if ((d.spi | static_cast<uint8_t>(d.tunnel)) != 0) [[unlikely]] note_spi_tunnel(e, dir, d);
  }

  // The first non-zero SPI per direction, and the first tunnel of the flow.
  [[gnu::noinline]] void note_spi_tunnel(flow_entry& e, int dir, const decoded_packet& d) noexcept {
    uint8_t meta = meta_of(e);
    if (d.spi != 0) {
      auto& spi = spis[static_cast<size_t>(&e - &pool[0])];
      if ((meta & kMetaHasSpi) == 0) {
        spi = {0, 0};
        meta |= kMetaHasSpi;
      }
      if (spi[dir] == 0) spi[dir] = d.spi;
    }
    if (tunnel_of(e) == tunnel_kind::none) meta |= static_cast<uint8_t>(static_cast<uint8_t>(d.tunnel) << kMetaTunnelShift);
    set_meta(e, meta);
  }

  // Swap what each direction counted and flip the initiator.
  [[gnu::noinline]] void swap_directions(flow_entry& e) noexcept {
    std::swap(e.packets[0], e.packets[1]);
    std::swap(e.bytes[0], e.bytes[1]);  // octets and TCP flags together
    const uint64_t f0 = e.frame[0], f1 = e.frame[1];
    e.frame[0] = (f0 & ~kFrameMask) | (f1 & kFrameMask);  // the top bits stay put
    e.frame[1] = (f1 & ~kFrameMask) | (f0 & kFrameMask);
    const uint8_t meta = meta_of(e);
    if (meta & kMetaHasSpi) {
      auto& spi = spis[static_cast<size_t>(&e - &pool[0])];
      std::swap(spi[0], spi[1]);
    }
    set_meta(e, meta ^ kMetaInitiatorIsB);
  }

  // The end that is due for `e` at `now`, if any (0 = none): of TCP end
  // (last + linger, once FIN went both ways or RST), idle (last + idle) and
  // active (first + active), the one whose deadline came first. Choosing by
  // deadline rather than by the order of the checks makes the reason the
  // same whenever the flow is looked at: on its next packet, in any sweep
  // slice, under any shard layout.
  uint8_t due(const flow_entry& e, uint64_t now) const noexcept {
    uint64_t first_deadline = UINT64_MAX;
    uint8_t reason = 0;
    const auto consider = [&](uint64_t deadline, end_reason r) {
      if (deadline <= now && deadline < first_deadline) first_deadline = deadline, reason = static_cast<uint8_t>(r);
    };
    if (tcp_ended(e)) consider(e.last_ns + cfg.tcp_linger_ns, end_reason::tcp_end);
    consider(e.last_ns + idle_ns, end_reason::idle);
    consider(e.first_ns + active_ns, end_reason::active);
    return reason;
  }

  // One test for the common case: false when nothing can be due for `e`
  // at this packet's time and the packet is no SYN; end_if_due decides
  // exactly when it is true.
  bool may_end(const flow_entry& e, const decoded_packet& d) const noexcept {
    // One branch, not three: all three are nearly always false.
    return (d.ts_ns >= e.last_ns + soonest_end_ns) | (d.ts_ns >= e.first_ns + active_ns) | ((d.tcp_flags & kSyn) != 0);
  }

  // A packet for an existing flow: close the record first if it is due, or
  // if the flow ended and a new SYN reopens the 5-tuple.
  [[gnu::noinline]] void end_if_due(flow_entry& e, const pending& p, const decoded_packet& d, record_buffer& out) noexcept {
    uint8_t r = due(e, d.ts_ns);
    if (r == 0 && tcp_ended(e) && (d.tcp_flags & (kSyn | kAck)) == kSyn) r = static_cast<uint8_t>(end_reason::tcp_end);
    if (r == 0) return;
    const auto reason = static_cast<end_reason>(r);
    export_record(e, reason, out);
    if (reason == end_reason::active)
      restart_record(e, d.ts_ns);
    else
      start_flow(e, p, d);
  }

  // Lookup and update for one packet. The stage-2 hint saves the probe
  // when its entry holds this very key: keys are unique in the table and a
  // free entry's key has ip_version 0, so that is the flow, whatever
  // happened to the index since. Otherwise, and for new flows, a full find.
  [[gnu::always_inline]] void apply(const pending& p, const decoded_packet& d, record_buffer& out) noexcept {
    if (p.hint == UINT32_MAX || !keys_equal(pool[p.hint].key, p.key)) [[unlikely]] {
      apply_slow(p, d, out);
      return;
    }
    flow_entry& e = pool[p.hint];
    if (may_end(e, d)) [[unlikely]]
      end_if_due(e, p, d, out);
    account(e, p, d, out);
  }

  // No usable hint: probe the index; a new flow if the key is not there.
  [[gnu::noinline]] void apply_slow(const pending& p, const decoded_packet& d, record_buffer& out) noexcept {
    uint32_t entry = find(p);
    if (entry == UINT32_MAX) {
      entry = allocate(out);
      index_insert(p.tag, p.home, entry);
      start_flow(pool[entry], p, d);
    } else if (may_end(pool[entry], d)) {
      end_if_due(pool[entry], p, d, out);
    }
    account(pool[entry], p, d, out);
  }

  // The lookup stages read the index and pool through local copies of
  // their base pointers: stores into `pending` and into entries would
  // otherwise make the compiler reload every member after each of them.
  struct lookup_view {
    const index_bucket* index;
    const flow_entry* pool;
    uint32_t buckets;
    hash_key key;  // a copy, so the hash reads it from the stack like the constants it replaces

    // Stage 1: canonicalize, hash, prefetch the home bucket.
    void hash(pending& p, const decoded_packet& d) const noexcept {
      uint64_t h;
      p.swapped = canonical_hash(d.key, p.key, h, key);
      p.tag = tag_of(h);
      p.home = fastrange(static_cast<uint32_t>(h >> 32), buckets);
      p.hint = UINT32_MAX;
      __builtin_prefetch(&index[p.home]);
    }

    // Stage 2: the first tag match in the home bucket (prefetched kAhead
    // packets ago) becomes apply()'s hint, and both cache lines of its
    // entry are prefetched. No branch on where in the bucket it sits; a
    // flow that had to live in a later bucket (about 1 % at half load)
    // gets no hint and a full probe.
    void entry(pending& p) const noexcept {
      const index_bucket& k = index[p.home];
      const uint32_t m = tag_matches(k, p.tag);
      if (m == 0) return;
      const uint32_t e1 = k.entry1[__builtin_ctz(m)];
      if (e1 == 0) return;  // tag 0 matched an empty slot
      p.hint = e1 - 1;
      const auto* c = reinterpret_cast<const char*>(&pool[p.hint]);
      __builtin_prefetch(c);
      __builtin_prefetch(c + sizeof(flow_entry) - 1);
    }
  };

  // A software pipeline over the batch: packet i + 2D is hashed and its
  // index line prefetched, packet i + D reads that line and prefetches its
  // entry, packet i is looked up (hint first) and updated. Memory for the
  // packets ahead is in flight while the current one computes, so latency
  // and work overlap instead of alternating as they do in whole-group
  // stages (docs/flow-table.md has the comparison). Correct on its own: a
  // hint is used only if its entry still holds this very key.
  uint64_t update(std::span<const decoded_packet> batch, record_buffer& out) noexcept {
    const size_t n = batch.size();
    const decoded_packet* in = batch.data();
    const lookup_view view{index.data(), pool.data(), buckets, hkey};
    const size_t head = std::min(n, 2 * kAhead);
    for (size_t i = 0; i < head; ++i) view.hash(ring[i & kRingMask], in[i]);
    for (size_t i = 0; i < std::min(n, kAhead); ++i) view.entry(ring[i & kRingMask]);
    // Steady state without bounds tests, then the last 2D packets.
    size_t i = 0;
    uint64_t newest = 0;
    for (; i + 2 * kAhead < n; ++i) {
      view.hash(ring[(i + 2 * kAhead) & kRingMask], in[i + 2 * kAhead]);
      view.entry(ring[(i + kAhead) & kRingMask]);
      apply(ring[i & kRingMask], in[i], out);
      newest = std::max(newest, in[i].ts_ns);
    }
    for (; i < n; ++i) {
      if (i + kAhead < n) view.entry(ring[(i + kAhead) & kRingMask]);
      apply(ring[i & kRingMask], in[i], out);
      newest = std::max(newest, in[i].ts_ns);
    }
    counters.packets += n;  // apply() meters every packet exactly once
    return newest;
  }

  // The decoder's general path for update_frames(), out of its loop.
  enum class frame_decode : uint8_t { ok, failed, fragment_work };
  [[gnu::noinline]] static frame_decode decode_slow(const packet_view& frame, const decode_options& options,
                                                    std::array<uint64_t, kDecodeStatusCount>& status,
                                                    decoded_packet& d) noexcept {
    const decode_status s = detail::decode_general(frame, options, d);
    if (s != decode_status::ok) {
      ++status[static_cast<size_t>(s)];
      return frame_decode::failed;
    }
    return d.frag != fragment_kind::none || d.has_outer_first_fragment ? frame_decode::fragment_work
                                                                       : frame_decode::ok;
  }

  // update() with the decoder as its first stage (flow_table.h). The
  // pipeline is the same, over slots of decoded packets instead of the
  // input span: a frame that does not decode takes no slot, so the stages
  // count slots (`made` hashed, `staged` index line read, `done` metered).
  // A slot lives at most 2 kAhead + 1 packets, well inside the ring.
  size_t update_frames(std::span<const packet_view> frames, const decode_options& options,
                       std::array<uint64_t, kDecodeStatusCount>& status, uint64_t& newest,
                       record_buffer& out) noexcept {
    const size_t n = frames.size();
    const packet_view* in = frames.data();
    const lookup_view view{index.data(), pool.data(), buckets, hkey};
    size_t next = 0;  // next frame to decode
    size_t made = 0, staged = 0, done = 0;
    uint64_t newest_here = 0;
    // Decode frame `next` into slot `slot` and hash it, after asking for
    // the frames and views ahead (detail/frame_prefetch.h; near the end of
    // the batch the addresses clamp to the last frame instead of a bounds
    // test, so one loop takes every frame). A frame that does not decode
    // is counted and passed; one that needs fragment work is left for the
    // caller, which resolves it, and the rest, through the fragment cache.
    const auto decode_frame = [&](size_t slot) __attribute__((always_inline)) {
      detail::prefetch_frame_headers(in[std::min(next + detail::kFramePrefetch, n - 1)]);
      __builtin_prefetch(&in[std::min(next + detail::kViewPrefetch, n - 1)]);
      decoded_packet& d = slots[slot & kRingMask];
      if (!detail::decode_plain(in[next], d)) [[unlikely]] {
        const frame_decode r = decode_slow(in[next], options, status, d);
        if (r != frame_decode::ok) {
          if (r == frame_decode::failed) ++next;
          return r;
        }
      }
      ++next;
      view.hash(ring[slot & kRingMask], d);
      return frame_decode::ok;
    };
    const auto meter = [&]() __attribute__((always_inline)) {
      const decoded_packet& d = slots[done & kRingMask];
      apply(ring[done & kRingMask], d, out);
      newest_here = std::max(newest_here, d.ts_ns);
      ++done;
    };
    // Fill: 2 kAhead slots hashed, kAhead of them staged.
    bool blocked = false;  // frame `next` needs fragment work
    while (made < 2 * kAhead && next < n) {
      const frame_decode r = decode_frame(made);
      made += r == frame_decode::ok;
      if (r == frame_decode::fragment_work) {
        blocked = true;
        break;
      }
    }
    for (; staged < std::min(made, kAhead); ++staged) view.entry(ring[staged & kRingMask]);
    // Steady state without bounds tests: each frame that decodes makes a
    // slot, stages the one kAhead back and meters the one 2 kAhead back.
    // There made == done + 2 kAhead and staged == done + kAhead throughout,
    // so only `done` and `next` move.
    if (!blocked && made == 2 * kAhead) {
      while (next < n) {
        const frame_decode r = decode_frame(done + 2 * kAhead);
        if (r != frame_decode::ok) [[unlikely]] {
          if (r == frame_decode::fragment_work) break;
          continue;
        }
        view.entry(ring[(done + kAhead) & kRingMask]);
        meter();
      }
      made = done + 2 * kAhead;
      staged = done + kAhead;
    }
    // Drain the slots in flight. No frame is left to decode: the fill
    // stops short of 2 kAhead slots only when the frames ran out or one
    // needs fragment work, and the steady state runs to the end or to it.
    while (done < made) {
      if (staged < made) {
        view.entry(ring[staged & kRingMask]);
        ++staged;
      }
      meter();
    }
    counters.packets += done;
    status[static_cast<size_t>(decode_status::ok)] += done;
    newest = std::max(newest, newest_here);
    return next;
  }

  // Close a flow that gets no packet at `now` if it is due. Returns whether
  // the entry was removed.
  bool sweep_one(uint32_t entry, uint64_t now, record_buffer& out) noexcept {
    flow_entry& e = pool[entry];
    if (e.key.ip_version == 0) return false;
    const uint8_t r = due(e, now);
    if (r == 0) return false;
    if (r != static_cast<uint8_t>(end_reason::active)) {
      remove(entry, static_cast<end_reason>(r), out);
      return true;
    }
    if (record_empty(e)) {  // silent for a whole active period: forget it
      index_erase(entry);
      release(entry);
      return true;
    }
    export_record(e, end_reason::active, out);
    restart_record(e, now);
    return false;
  }

  void expire(uint64_t now, record_buffer& out) noexcept {
    if (high_water == 0 || now <= last_sweep_ns) return;
    const uint64_t elapsed = now - last_sweep_ns;
    // Cover [0, high_water) about once per second of packet time; a jump of
    // a second or more sweeps everything at once.
    const uint64_t budget = elapsed >= kSweepPeriodNs
                                ? high_water
                                : uint64_t{high_water} * elapsed / kSweepPeriodNs;  // < 2^62
    if (budget == 0) return;  // let the elapsed time accumulate
    last_sweep_ns = now;
    ++counters.sweeps;
    for (uint64_t i = 0; i < budget; ++i) {
      if (sweep_cursor >= high_water) sweep_cursor = 0;
      sweep_one(sweep_cursor++, now, out);
    }
  }

  // A complete sweep at `now`: afterwards no flow in the table is due.
  void expire_all(uint64_t now, record_buffer& out) noexcept {
    for (uint32_t i = 0; i < high_water; ++i) sweep_one(i, now, out);
    last_sweep_ns = std::max(last_sweep_ns, now);
  }

  void flush(end_reason reason, record_buffer& out) noexcept {
    for (uint32_t i = 0; i < high_water; ++i)
      if (pool[i].key.ip_version != 0) export_record(pool[i], reason, out);
    pool.zero();
    index.zero();
    high_water = free_head = live = 0;
    evict_cursor = sweep_cursor = 0;
  }
};

flow_table::flow_table(const flow_table_config& config, service_ports ports)
    : impl_(std::make_unique<impl>(config, std::move(ports))) {}

flow_table::~flow_table() = default;

uint64_t flow_table::update(std::span<const decoded_packet> batch, record_buffer& out) noexcept {
  return impl_->update(batch, out);
}

size_t flow_table::update_frames(std::span<const packet_view> frames, const decode_options& options,
                                 std::array<uint64_t, kDecodeStatusCount>& status, uint64_t& newest,
                                 record_buffer& out) noexcept {
  return impl_->update_frames(frames, options, status, newest, out);
}

void flow_table::expire(uint64_t now_ns, record_buffer& out) noexcept { impl_->expire(now_ns, out); }

void flow_table::expire_all(uint64_t now_ns, record_buffer& out) noexcept { impl_->expire_all(now_ns, out); }

void flow_table::flush(end_reason reason, record_buffer& out) noexcept { impl_->flush(reason, out); }

size_t flow_table::size() const noexcept { return impl_->live; }
size_t flow_table::max_flows() const noexcept { return impl_->max_flows; }
size_t flow_table::memory_bytes() const noexcept {
  return impl_->pool.bytes() + impl_->index.bytes() + impl_->spis.bytes();
}

size_t flow_table::memory_bytes_for(uint32_t max_flows, bool huge_pages) noexcept {
  const uint64_t flows = std::max<uint32_t>(max_flows, 1);
  const uint64_t buckets = (2 * flows + kBucketSlots - 1) / kBucketSlots;
  const auto mapped = [&](uint64_t bytes, bool huge) {
    return huge && bytes >= kHugePage / 4 ? (bytes + kHugePage - 1) / kHugePage * kHugePage : bytes;
  };
  return mapped(flows * sizeof(flow_entry), huge_pages) + mapped(buckets * sizeof(index_bucket), huge_pages) +
         flows * sizeof(std::array<uint32_t, 2>);
}
const flow_table_counters& flow_table::counters() const noexcept { return impl_->counters; }

uint64_t flow_table::hash_seed() const noexcept { return impl_->cfg.hash_seed; }

uint32_t flow_table::bucket_of(const flow_key& key) const noexcept {
  flow_key canonical;
  uint64_t hash;
  canonical_hash(key, canonical, hash, impl_->hkey);
  return impl_->home_of_hash(hash);
}

flow_table::probe_stats flow_table::index_probes() const noexcept {
  const impl& m = *impl_;
  probe_stats st;
  for (uint32_t b = 0; b < m.buckets; ++b) {
    for (uint32_t used = used_slots(m.index[b]); used != 0; used &= used - 1) {
      const uint32_t home = m.home_of_entry(m.index[b].entry1[__builtin_ctz(used)] - 1);
      const uint32_t distance = b >= home ? b - home : b + m.buckets - home;  // probing wraps
      ++st.flows;
      st.total_buckets += distance;
      st.longest_buckets = std::max(st.longest_buckets, distance);
    }
  }
  return st;
}

void flow_table::visit_impl(void (*cb)(void*, const flow_record&), void* ctx) const {
  for (uint32_t i = 0; i < impl_->high_water; ++i) {
    const flow_entry& e = impl_->pool[i];
    if (e.key.ip_version == 0 || record_empty(e)) continue;
    flow_record r;
    impl_->fill_record(e, end_reason::active, r);
    cb(ctx, r);
  }
}

}  // namespace flower
