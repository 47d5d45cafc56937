#include "traffic/synthetic_source.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace flower {
namespace {

constexpr uint32_t kMaxCaplen = 96;
constexpr uint8_t kTcp = 6, kUdp = 17;
constexpr uint8_t kSyn = 0x02, kAck = 0x10, kPsh = 0x08;
constexpr uint8_t kMacClient[6] = {2, 0, 0, 0, 0, 1}, kMacServer[6] = {2, 0, 0, 0, 0, 2};

uint64_t splitmix64(uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

double unit(uint64_t h) noexcept { return static_cast<double>(h >> 11) * 0x1.0p-53; }

void put16(uint8_t* p, uint32_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) noexcept {
  put16(p, v >> 16);
  put16(p + 2, v & 0xffff);
}

uint16_t ipv4_checksum(const uint8_t* h) noexcept {
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += static_cast<uint32_t>(h[i] << 8 | h[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// One flow's identity and progress.
struct flow_slot {
  uint64_t id = 0;
  uint32_t truth = 0;    // index into truth_
  uint32_t sent = 0;     // packets so far
  uint8_t proto = kTcp;
  bool v6 = false;
  uint16_t client_port = 0;
  uint16_t server_port = 0;
  std::array<uint8_t, 16> client{};  // v4: first 4 bytes used
  std::array<uint8_t, 16> server{};
};

flow_slot make_flow(uint64_t id, const synthetic_config& c) {
  flow_slot f;
  f.id = id;
  const uint64_t h = splitmix64(id ^ (c.seed * 0x9e3779b97f4a7c15ull));
  f.v6 = unit(h) < c.v6_share;
  f.proto = unit(splitmix64(h)) < c.udp_share ? kUdp : kTcp;
  f.client_port = static_cast<uint16_t>(32768 + id % 28000);
  f.server_port = f.proto == kTcp ? static_cast<uint16_t>(id & 1 ? 443 : 80)
                                  : static_cast<uint16_t>(31001 + (id & 3) * 1000);
  if (!f.v6) {
    // Client 10.0.0.0/8 and server 172.16.0.0/12 derived from the id: all
    // flows up to 2^28 are distinct by address pair.
    f.client = {10, static_cast<uint8_t>(id >> 16), static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id)};
    f.server = {172, static_cast<uint8_t>(16 | ((id >> 24) & 0x0f)), static_cast<uint8_t>(h >> 8),
                static_cast<uint8_t>(h)};
  } else {
    f.client = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0};
    f.server = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0};
    for (int i = 0; i < 8; ++i) {
      f.client[8 + i] = static_cast<uint8_t>(id >> (56 - 8 * i));
      f.server[8 + i] = static_cast<uint8_t>(h >> (56 - 8 * i));
    }
  }
  return f;
}

flow_truth truth_of(const flow_slot& f) {
  flow_truth t;
  t.key.proto = f.proto;
  t.key.ip_version = f.v6 ? 6 : 4;
  if (f.v6) {
    t.key.addr_a = f.client;
    t.key.addr_b = f.server;
  } else {
    t.key.set_v4(t.key.addr_a, f.client.data());
    t.key.set_v4(t.key.addr_b, f.server.data());
  }
  t.key.port_a = f.client_port;
  t.key.port_b = f.server_port;
  return t;
}

uint32_t header_bytes(const flow_slot& f) noexcept {
  return 14 + (f.v6 ? 40u : 20u) + (f.proto == kTcp ? 20u : 8u);
}

// Writes the frame's first `caplen` bytes at `p`.
void build_frame(uint8_t* p, uint32_t caplen, uint32_t frame_len, const flow_slot& f, bool forward) {
  std::memset(p, 0, caplen);
  std::memcpy(p, forward ? kMacServer : kMacClient, 6);
  std::memcpy(p + 6, forward ? kMacClient : kMacServer, 6);
  const auto& src = forward ? f.client : f.server;
  const auto& dst = forward ? f.server : f.client;
  uint8_t* l4;
  const uint32_t ip_len = frame_len - 14;
  if (!f.v6) {
    put16(p + 12, 0x0800);
    uint8_t* ip = p + 14;
    ip[0] = 0x45;
    put16(ip + 2, ip_len);
    put16(ip + 4, f.sent & 0xffff);
    put16(ip + 6, 0x4000);  // DF
    ip[8] = 64;
    ip[9] = f.proto;
    std::memcpy(ip + 12, src.data(), 4);
    std::memcpy(ip + 16, dst.data(), 4);
    put16(ip + 10, ipv4_checksum(ip));
    l4 = ip + 20;
  } else {
    put16(p + 12, 0x86dd);
    uint8_t* ip = p + 14;
    put32(ip, 0x60000000u);
    put16(ip + 4, ip_len - 40);
    ip[6] = f.proto;
    ip[7] = 64;
    std::memcpy(ip + 8, src.data(), 16);
    std::memcpy(ip + 24, dst.data(), 16);
    l4 = ip + 40;
  }
  put16(l4, forward ? f.client_port : f.server_port);
  put16(l4 + 2, forward ? f.server_port : f.client_port);
  if (f.proto == kTcp) {
    const uint8_t flags = f.sent == 0 ? kSyn : f.sent == 1 ? static_cast<uint8_t>(kSyn | kAck) : static_cast<uint8_t>(kPsh | kAck);
    put32(l4 + 4, 1000 + f.sent);
    put32(l4 + 8, f.sent == 0 ? 0 : 2000 + f.sent);
    l4[12] = 5 << 4;
    l4[13] = flags;
    put16(l4 + 14, 65535);
  } else {
    put16(l4 + 4, ip_len - (f.v6 ? 40 : 20));
  }
}

uint32_t pick_size(const synthetic_config& c, uint64_t i, const flow_slot& f) noexcept {
  uint32_t size = c.frame_bytes;
  if (c.sizes == size_mix::imix) {
    const uint64_t r = splitmix64(i ^ 0x1f2e3d4c) % 12;  // 64/576/1500 at 7:4:1
    size = r < 7 ? 64 : r < 11 ? 576 : 1500;
  }
  return std::max(size, header_bytes(f));
}

constexpr size_t kArenaChunk = size_t{64} << 20;

// Loop number `x` into the client's (and for IPv4 the server's) address of
// one frame; the destination MAC tells the directions apart (build_frame).
void xor_loop(uint8_t* p, uint64_t x) noexcept {
  uint8_t* ip = p + 14;
  const bool v4 = (ip[0] >> 4) == 4;
  const bool forward = p[5] == kMacServer[5];
  if (v4) {
    uint8_t* client = ip + (forward ? 12 : 16);
    uint8_t* server = ip + (forward ? 16 : 12);
    client[0] ^= static_cast<uint8_t>(x);
    server[0] ^= static_cast<uint8_t>(x >> 8);
    ip[10] = ip[11] = 0;
    put16(ip + 10, ipv4_checksum(ip));
  } else {
    uint8_t* client = ip + (forward ? 8 : 24);
    for (int i = 0; i < 4; ++i) client[4 + i] ^= static_cast<uint8_t>(x >> (24 - 8 * i));
  }
}

// Every frame of a run gets a slot of one size, so packets can trade slots.
uint32_t slot_bytes(const synthetic_config& c) noexcept {
  const uint32_t largest = c.sizes == size_mix::imix ? kMaxCaplen : std::clamp(c.frame_bytes, c.v6_share > 0 ? 74u : 54u, kMaxCaplen);
  return (largest + 15) & ~15u;
}

// A new random order of the packets at views[0..n): the packets (frame
// bytes, caplen, wire_len) trade places, while each view keeps its frame
// slot and its time, so frames stay in memory in the order they are read,
// as in a NIC's ring.
void shuffle_packets(packet_view* v, size_t n, uint32_t slot, uint64_t& rng, std::vector<uint8_t>& scratch,
                     std::vector<uint32_t>& order) {
  if (n < 2) return;
  order.resize(n);
  for (size_t k = 0; k < n; ++k) order[k] = static_cast<uint32_t>(k);
  for (size_t k = n; k > 1; --k) {
    rng = splitmix64(rng);
    std::swap(order[k - 1], order[rng % k]);
  }
  scratch.resize(n * (slot + 8));
  uint8_t* lens = scratch.data() + n * slot;
  for (size_t k = 0; k < n; ++k) {
    std::memcpy(scratch.data() + k * slot, v[k].data, v[k].caplen);
    std::memcpy(lens + 8 * k, &v[k].caplen, 4);
    std::memcpy(lens + 8 * k + 4, &v[k].wire_len, 4);
  }
  for (size_t k = 0; k < n; ++k) {
    const size_t from = order[k];
    std::memcpy(&v[k].caplen, lens + 8 * from, 4);
    std::memcpy(&v[k].wire_len, lens + 8 * from + 4, 4);
    // The frames are the traffic's own (frames_); views only read them.
    std::memcpy(const_cast<uint8_t*>(v[k].data), scratch.data() + from * slot, v[k].caplen);
  }
}

}  // namespace

void synthetic_traffic::frame_arena::chunk_free::operator()(uint8_t* p) const noexcept {
  huge_page_allocator<uint8_t>().deallocate(p, kArenaChunk);
}

uint8_t* synthetic_traffic::frame_arena::take(size_t bytes) {
  if (chunks.empty() || used + bytes > kArenaChunk) {
    // On 2 MiB pages like a UMEM (capture/detail/unique_fd.h), and
    // uninitialised: pages never written are never resident.
    chunks.emplace_back(huge_page_allocator<uint8_t>().allocate(kArenaChunk));
    used = 0;
  }
  uint8_t* p = chunks.back().get() + used;
  used += bytes;
  total += bytes;
  return p;
}

synthetic_traffic synthetic_traffic::generate(const synthetic_config& c) {
  if (c.flows == 0 || c.queues == 0) throw std::invalid_argument("synthetic traffic needs flows and queues");
  if (c.packets_per_sec <= 0) throw std::invalid_argument("packets_per_sec must be positive");
  if (c.queues > UINT16_MAX) throw std::invalid_argument("synthetic traffic takes at most 65535 queues");
  synthetic_traffic t;
  t.config_ = c;
  const uint32_t slot = slot_bytes(c);
  t.frames_.resize(c.queues);
  t.views_.resize(c.packets);
  if (c.queues > 1) {
    t.queues_.resize(c.queues);
    for (auto& q : t.queues_) q.reserve(c.packets / c.queues + c.packets / 64 + 16);
    t.queue_of_.resize(c.packets);
  }

  std::vector<flow_slot> slots(c.flows);
  std::vector<int64_t> truth_of_slot(c.flows, -1);  // truth entries made on first packet
  uint64_t next_id = 0;
  for (auto& s : slots) s = make_flow(next_id++, c);

  std::vector<double> cdf;  // Zipf: cumulative popularity by slot rank
  if (c.zipf_s > 0) {
    cdf.resize(c.flows);
    double sum = 0;
    for (uint64_t r = 0; r < c.flows; ++r) cdf[r] = sum += 1.0 / std::pow(static_cast<double>(r + 1), c.zipf_s);
    for (double& v : cdf) v /= sum;
  }

  // Shuffled uniform rounds: slot order of the current round (Fisher-Yates
  // from the config's seed, so the traffic is still reproducible).
  const bool shuffled = cdf.empty() && c.order == uniform_order::shuffled;
  std::vector<uint64_t> round(shuffled ? c.flows : 0);
  for (uint64_t r = 0; r < round.size(); ++r) round[r] = r;
  const auto shuffle = [](std::vector<uint64_t>& v, uint64_t& state) {
    for (uint64_t k = v.size(); k > 1; --k) {
      state = splitmix64(state);
      std::swap(v[k - 1], v[state % k]);
    }
  };

  const double ns_per_packet = 1e9 / c.packets_per_sec;
  const double packets_per_churn = c.churn_per_sec > 0 ? c.packets_per_sec / c.churn_per_sec : 0;
  double next_churn = packets_per_churn;
  uint64_t churned = 0;
  uint64_t rng = c.seed;

  for (uint64_t i = 0; i < c.packets; ++i) {
    while (packets_per_churn > 0 && static_cast<double>(i) >= next_churn) {
      // Replace slots oldest-first (round robin): a fresh identity, no
      // packets yet; the retired flow simply goes quiet.
      const uint64_t s = churned++ % c.flows;
      slots[s] = make_flow(next_id++, c);
      truth_of_slot[s] = -1;
      next_churn += packets_per_churn;
    }
    uint64_t s;
    if (cdf.empty()) {
      s = i % c.flows;
      if (shuffled) {
        if (s == 0) shuffle(round, rng);  // a new round: a new order
        s = round[s];
      }
    } else {
      const double u = unit(rng = splitmix64(rng));
      s = static_cast<uint64_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
      if (s >= c.flows) s = c.flows - 1;
    }
    flow_slot& f = slots[s];
    if (truth_of_slot[s] < 0) {
      truth_of_slot[s] = static_cast<int64_t>(t.truth_.size());
      t.truth_.push_back(truth_of(f));
    }
    const bool forward = (f.sent & 1) == 0;
    const uint32_t frame_len = pick_size(c, i, f);
    const uint32_t caplen = std::min(frame_len, kMaxCaplen);
    const unsigned queue = static_cast<unsigned>(f.id % c.queues);
    uint8_t* p = t.frames_[queue].take(slot);
    build_frame(p, caplen, frame_len, f, forward);

    packet_view& v = t.views_[i];
    v.data = p;
    v.caplen = caplen;
    v.wire_len = frame_len;
    v.ts_ns = c.start_ns + static_cast<uint64_t>(static_cast<double>(i) * ns_per_packet);
    v.link = link_type::ethernet;
    if (!t.queues_.empty()) {
      t.queues_[queue].push_back(v);
      t.queue_of_[i] = static_cast<uint16_t>(queue);
    }

    flow_truth& tr = t.truth_[static_cast<size_t>(truth_of_slot[s])];
    (forward ? tr.fwd_packets : tr.rev_packets) += 1;
    (forward ? tr.fwd_bytes : tr.rev_bytes) += frame_len - 14;
    t.totals_.ip_bytes += frame_len - 14;
    t.totals_.frame_bytes += frame_len;
    ++f.sent;
  }
  for (const frame_arena& a : t.frames_) t.frame_bytes_used_ += a.total;
  t.totals_.packets = c.packets;
  t.totals_.flows = t.truth_.size();
  t.loop_ns_ = static_cast<uint64_t>(static_cast<double>(c.packets) * ns_per_packet);
  return t;
}

void synthetic_traffic::start_loop(uint64_t loop) {
  if (loop == loop_) return;
  const uint64_t from = loop_;
  loop_ = loop;
  // Unsigned wrap-around cancels: the result is loop 0's time plus loop's shift.
  const uint64_t shift = loop * loop_ns_ - from * loop_ns_;
  for (packet_view& v : views_) v.ts_ns += shift;
  for (view_array& q : queues_)
    for (packet_view& v : q) v.ts_ns += shift;

  if (config_.churn_per_sec > 0) {
    // Every frame once (views_ holds each exactly once). The frames are
    // ours (frames_); views only read them, hence the const.
    for (const packet_view& v : views_) xor_loop(const_cast<uint8_t*>(v.data), from ^ loop);
  }

  if (config_.zipf_s > 0 || config_.order != uniform_order::shuffled) return;
  // A round is `flows` consecutive packets, one per slot; in a queue it is
  // the consecutive packets of that round's slots on that queue. Packets
  // trade frame slots, so views_ (which holds the same slots in time order)
  // takes each queue's new caplen and wire_len after the queues are done.
  uint64_t rng = splitmix64(config_.seed ^ (loop * 0xd1b54a32d192ed03ull));
  const size_t flows = config_.flows;
  const uint32_t slot = slot_bytes(config_);
  std::vector<uint8_t> scratch;
  std::vector<uint32_t> order;
  if (queues_.empty()) {
    for (size_t at = 0; at < views_.size(); at += flows)
      shuffle_packets(views_.data() + at, std::min(flows, views_.size() - at), slot, rng, scratch, order);
    return;
  }
  std::vector<size_t> in_round(queues_.size(), 0), next(queues_.size(), 0);
  for (size_t at = 0; at < views_.size(); at += flows) {
    const size_t end = std::min(at + flows, views_.size());
    for (size_t i = at; i < end; ++i) ++in_round[queue_of_[i]];
    for (size_t i = at; i < end; ++i) {
      const uint16_t q = queue_of_[i];
      if (in_round[q] == 0) continue;
      shuffle_packets(queues_[q].data() + next[q], in_round[q], slot, rng, scratch, order);
      in_round[q] = 0;
    }
    for (size_t i = at; i < end; ++i) {
      const packet_view& v = queues_[queue_of_[i]][next[queue_of_[i]]++];
      views_[i].caplen = v.caplen;
      views_[i].wire_len = v.wire_len;
    }
  }
}

std::vector<size_t> synthetic_traffic::queue_counts(size_t n) const {
  if (queues_.empty()) return {std::min(n, views_.size())};
  std::vector<size_t> counts(queues_.size(), 0);
  for (size_t i = 0; i < std::min(n, queue_of_.size()); ++i) ++counts[queue_of_[i]];
  return counts;
}

size_t synthetic_traffic::memory_bytes() const noexcept {
  size_t q = 0;
  for (const auto& v : queues_) q += v.capacity() * sizeof(packet_view);
  return frame_bytes_used_ + views_.capacity() * sizeof(packet_view) + q + queue_of_.capacity() * sizeof(uint16_t);
}

size_t synthetic_traffic::memory_bytes_for(const synthetic_config& c) noexcept {
  const uint64_t packets = c.packets, flows = c.flows;
  // The largest frame a packet stores: headers (74 B for IPv6/TCP) up to kMaxCaplen.
  const uint64_t caplen = c.sizes == size_mix::imix ? kMaxCaplen : std::clamp<uint64_t>(c.frame_bytes, 74, kMaxCaplen);
  uint64_t per_packet = ((caplen + 15) & ~uint64_t{15}) + sizeof(packet_view);
  if (c.queues > 1) per_packet += sizeof(packet_view) + sizeof(uint16_t);
  // Truth grows by doubling: twice the flows that will have one.
  const double churned = c.packets_per_sec > 0 ? c.churn_per_sec * static_cast<double>(packets) / c.packets_per_sec : 0;
  const uint64_t truth = 2 * (flows + static_cast<uint64_t>(std::min(churned, static_cast<double>(packets))));
  const uint64_t per_flow = sizeof(flow_slot) + sizeof(int64_t) + sizeof(uint64_t) + (c.zipf_s > 0 ? sizeof(double) : 0);
  return static_cast<size_t>(packets * per_packet + flows * per_flow + truth * sizeof(flow_truth) +
                             c.queues * (packets / 64 + 16) * sizeof(packet_view));
}

flow_key key_in_loop(flow_key key, uint64_t loop) noexcept {
  if (key.ip_version == 4) {
    key.addr_a[12] ^= static_cast<uint8_t>(loop);
    key.addr_b[12] ^= static_cast<uint8_t>(loop >> 8);
  } else {
    for (int i = 0; i < 4; ++i) key.addr_a[4 + i] ^= static_cast<uint8_t>(loop >> (24 - 8 * i));
  }
  return key;
}

}  // namespace flower
