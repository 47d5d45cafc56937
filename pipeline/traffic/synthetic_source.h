#pragma once
// synthetic_traffic: Ethernet frames built in memory with known ground
// truth, for benchmarks (flower-bench) and invariant tests.
//
//   synthetic_config cfg;
//   cfg.flows = 1'000'000; cfg.packets = 4'000'000; cfg.sizes = size_mix::imix;
//   synthetic_traffic t = synthetic_traffic::generate(cfg);   // all frames built up front
//   span_source src(t.packets());                             // pipeline/parallel_engine.h
//   engine.run(src);
//   for (const flow_truth& f : t.truth()) ...                 // what the records must say
//
// Model: `flows` slots are concurrently active. Each packet picks a slot
// uniformly or by Zipf popularity (rank r gets 1/(r+1)^s). Uniform traffic
// comes in rounds that give every slot one packet, in slot order
// (`uniform_order::slots`) or in a fresh random order each round
// (`uniform_order::shuffled`). The two differ only in memory: a flow table
// allocates entries in order of first packet, so slot order walks them as
// an array (the hardware prefetcher's best case), as real traffic never
// does; shuffled rounds touch them at random, as real traffic does. With
// churn, one slot gets a brand new flow every 1/churn_per_sec of packet
// time. Packet j of a flow goes client->server when j is even, back when odd;
// TCP flows open with SYN, SYN-ACK and never close (no FIN), UDP flows use
// non-service server ports, so the client is always the initiator. Packet
// time advances 1/packets_per_sec per packet (well inside the timeouts).
//
// Frames are stored caplen-bounded (at most 96 bytes: every header we
// build); wire_len and the IP length fields carry the full size (64 B, or
// IMIX 64/576/1500 at 7:4:1). A v6 TCP frame needs 74 bytes, so "64 B" v6
// TCP frames are 74 B. The object owns the bytes; views stay valid as long
// as it lives.

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "pipeline/flow_key.h"
#include "pipeline/packet.h"
#include "pipeline/traffic/huge_page_allocator.h"

namespace flower {

enum class size_mix : uint8_t { fixed, imix };
enum class uniform_order : uint8_t { slots, shuffled };

struct synthetic_config {
  uint64_t flows = 10'000;           // concurrently active flows (slots)
  uint64_t packets = 1'000'000;
  size_mix sizes = size_mix::fixed;
  uint32_t frame_bytes = 64;         // fixed mode, without FCS
  double v6_share = 0.0;             // fraction of flows that are IPv6
  double udp_share = 0.2;            // fraction of flows that are UDP (rest TCP)
  double zipf_s = 0.0;               // popularity skew; 0 = uniform, in rounds
  uniform_order order = uniform_order::slots;  // of each uniform round
  double churn_per_sec = 0.0;        // new flows per second of packet time
  double packets_per_sec = 10e6;     // packet-time rate for timestamps
  uint64_t start_ns = 1'700'000'000ull * 1'000'000'000ull;
  uint64_t seed = 1;
  unsigned queues = 1;               // per-queue streams (RSS-like split by flow)
};

// One flow as its exported record(s) must describe it.
struct flow_truth {
  flow_key key;  // initiator (a) -> responder (b)
  uint64_t fwd_packets = 0;
  uint64_t fwd_bytes = 0;  // IP bytes
  uint64_t rev_packets = 0;
  uint64_t rev_bytes = 0;
};

struct traffic_totals {
  uint64_t flows = 0;
  uint64_t packets = 0;
  uint64_t ip_bytes = 0;
  uint64_t frame_bytes = 0;  // wire lengths, without FCS
};

class synthetic_traffic {
 public:
  static synthetic_traffic generate(const synthetic_config& config);

  std::span<const packet_view> packets() const noexcept { return views_; }  // time order
  // Packets of queue i (flows split by identity), each in time order.
  std::span<const packet_view> queue(unsigned i) const noexcept {
    return queues_.empty() ? std::span<const packet_view>(views_) : std::span<const packet_view>(queues_[i]);
  }
  unsigned queue_count() const noexcept { return queues_.empty() ? 1u : static_cast<unsigned>(queues_.size()); }

  const std::vector<flow_truth>& truth() const noexcept { return truth_; }  // flows with >= 1 packet
  const traffic_totals& totals() const noexcept { return totals_; }
  size_t memory_bytes() const noexcept;  // frames + views

 private:
  // Frame bytes per queue, in chunks: each queue's frames are contiguous in
  // its own memory, as in a NIC's per-queue rings, so a worker reading one
  // queue streams only its own frames' cache lines.
  struct frame_arena {
    struct chunk_free {
      void operator()(uint8_t* p) const noexcept;
    };
    std::vector<std::unique_ptr<uint8_t, chunk_free>> chunks;
    size_t used = 0;  // in the last chunk
    size_t total = 0;
    uint8_t* take(size_t bytes);
  };
  std::vector<frame_arena> frames_;
  size_t frame_bytes_used_ = 0;
  using view_array = std::vector<packet_view, huge_page_allocator<packet_view>>;
  view_array views_;
  std::vector<view_array> queues_;  // empty with one queue: queue(0) is views_
  std::vector<flow_truth> truth_;
  traffic_totals totals_;
};

}  // namespace flower
