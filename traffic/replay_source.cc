#include "traffic/replay_source.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>

#include "capture/capture_file.h"

namespace flower {
namespace {

struct ip_location {
  int offset = -1;  // of the IP header in the frame, -1 when none
  int version = 0;
};

// Finds the outermost IP header within the captured bytes.
ip_location find_ip(const uint8_t* p, uint32_t caplen, link_type link) noexcept {
  uint32_t off = 0;
  uint32_t ethertype = 0;
  switch (link) {
    case link_type::ethernet: {
      if (caplen < 14) return {};
      ethertype = static_cast<uint32_t>(p[12] << 8 | p[13]);
      off = 14;
      for (int tags = 0; (ethertype == 0x8100 || ethertype == 0x88a8) && tags < 8; ++tags) {
        if (caplen < off + 4) return {};
        ethertype = static_cast<uint32_t>(p[off + 2] << 8 | p[off + 3]);
        off += 4;
      }
      break;
    }
    case link_type::linux_sll:
      if (caplen < 16) return {};
      ethertype = static_cast<uint32_t>(p[14] << 8 | p[15]);
      off = 16;
      break;
    case link_type::linux_sll2:
      if (caplen < 20) return {};
      ethertype = static_cast<uint32_t>(p[0] << 8 | p[1]);
      off = 20;
      break;
    case link_type::null:
    case link_type::loop:
      off = 4;
      break;
    case link_type::raw:
    case link_type::ipv4:
    case link_type::ipv6:
      break;
    default:
      return {};
  }
  if (ethertype != 0 && ethertype != 0x0800 && ethertype != 0x86dd) return {};
  if (caplen <= off) return {};
  const int version = p[off] >> 4;
  if (version == 4 && caplen >= off + 20) return {static_cast<int>(off), 4};
  if (version == 6 && caplen >= off + 40) return {static_cast<int>(off), 6};
  return {};
}

void fix_ipv4_checksum(uint8_t* ip) noexcept {
  const uint32_t ihl = (ip[0] & 0x0fu) * 4;
  ip[10] = ip[11] = 0;
  uint32_t sum = 0;
  for (uint32_t i = 0; i + 1 < ihl; i += 2) sum += static_cast<uint32_t>(ip[i] << 8 | ip[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = static_cast<uint8_t>(~sum >> 8);
  ip[11] = static_cast<uint8_t>(~sum);
}

void rewrite(uint8_t* p, ip_location ip, uint64_t loop) noexcept {
  const auto a = static_cast<uint8_t>(loop), b = static_cast<uint8_t>(loop >> 8);
  uint8_t* h = p + ip.offset;
  if (ip.version == 4) {
    h[12 + 1] ^= a; h[12 + 2] ^= b;
    h[16 + 1] ^= a; h[16 + 2] ^= b;
    fix_ipv4_checksum(h);
  } else {
    h[8 + 2] ^= a; h[8 + 3] ^= b;
    h[24 + 2] ^= a; h[24 + 3] ^= b;
  }
}

// Same for both directions: XOR-folds the address pair.
unsigned queue_of(const uint8_t* p, ip_location ip, unsigned queues) noexcept {
  if (ip.offset < 0 || queues == 1) return 0;
  const uint8_t* h = p + ip.offset;
  const int len = ip.version == 4 ? 4 : 16;
  const uint8_t* s = h + (ip.version == 4 ? 12 : 8);
  const uint8_t* d = s + len;
  uint32_t x = 0;
  for (int i = 0; i < len; ++i) x = x * 31 + static_cast<uint32_t>(s[i] ^ d[i]) + static_cast<uint32_t>(s[i] + d[i]);
  x ^= x >> 16;
  x *= 0x45d9f3bu;
  x ^= x >> 16;
  return x % queues;
}

}  // namespace

replay_traffic replay_traffic::load(const replay_config& config) {
  capture_file file = capture_file::open(config.path);
  std::vector<packet_view> base;
  std::array<packet_view, 256> batch;
  while (size_t n = file.next_batch(batch)) base.insert(base.end(), batch.begin(), batch.begin() + static_cast<long>(n));

  replay_traffic t;
  t.file_packets_ = base.size();
  if (config.queues > UINT16_MAX) throw std::invalid_argument("replay takes at most 65535 queues");
  t.queues_.resize(std::max(1u, config.queues));
  if (base.empty()) return t;
  uint64_t total = config.packets ? config.packets : base.size();
  t.loops_ = (total + base.size() - 1) / base.size();
  if (config.max_prepared != 0 && total > config.max_prepared) {
    // Whole passes, a power of two of them, so that round m's pass j is
    // pass m * loops_ + j = (m * loops_) ^ j of the stream (start_loop).
    uint64_t passes = 1;
    while (passes * 2 * base.size() <= config.max_prepared) passes *= 2;
    t.loops_ = passes;
    total = passes * base.size();
  }

  uint64_t first_ts = base.front().ts_ns, last_ts = first_ts;
  for (const packet_view& v : base) {
    first_ts = std::min(first_ts, v.ts_ns);
    last_ts = std::max(last_ts, v.ts_ns);
  }
  const uint64_t loop_shift = last_ts - first_ts + 1'000'000'000ull;
  t.loop_shift_ns_ = loop_shift;

  size_t bytes = 0;
  for (const packet_view& v : base) bytes += (std::min(v.caplen, config.snaplen) + 15) & ~size_t{15};
  t.frames_.reset(new uint8_t[bytes * t.loops_ + 16]);
  t.views_.reserve(total);
  size_t at = 0;
  for (uint64_t loop = 0; loop < t.loops_ && t.views_.size() < total; ++loop) {
    for (const packet_view& v : base) {
      if (t.views_.size() == total) break;
      const uint32_t caplen = std::min(v.caplen, config.snaplen);
      uint8_t* p = t.frames_.get() + at;
      std::memcpy(p, v.data, caplen);
      at += (caplen + 15) & ~size_t{15};
      const ip_location ip = find_ip(p, caplen, v.link);
      if (loop != 0 && ip.offset >= 0) rewrite(p, ip, loop);
      packet_view out{p, caplen, v.wire_len, v.ts_ns + loop * loop_shift, v.link};
      t.views_.push_back(out);
      const unsigned q = queue_of(p, ip, static_cast<unsigned>(t.queues_.size()));
      t.queues_[q].push_back(out);
      t.queue_of_.push_back(static_cast<uint16_t>(q));
      t.frame_bytes_ += v.wire_len;
    }
  }
  return t;
}

void replay_traffic::start_loop(uint64_t round) {
  if (round == round_ || views_.empty()) return;
  // Pass j of round m is pass m * loops_ + j; with loops_ a power of two
  // that is (m * loops_) ^ j, so moving rounds XORs the same value into
  // every frame. (Unsigned wrap-around cancels in the time shift.)
  const uint64_t x = (round ^ round_) * loops_;
  const uint64_t shift = (round - round_) * loops_ * loop_shift_ns_;
  round_ = round;
  for (packet_view& v : views_) {
    // The frames are ours (frames_); views only read them.
    uint8_t* p = const_cast<uint8_t*>(v.data);
    const ip_location ip = find_ip(p, v.caplen, v.link);
    if (ip.offset >= 0) rewrite(p, ip, x);
    v.ts_ns += shift;
  }
  for (view_array& q : queues_)
    for (packet_view& v : q) v.ts_ns += shift;
}

std::vector<size_t> replay_traffic::queue_counts(size_t n) const {
  std::vector<size_t> counts(queues_.size(), 0);
  for (size_t i = 0; i < std::min(n, queue_of_.size()); ++i) ++counts[queue_of_[i]];
  return counts;
}

}  // namespace flower
