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
// Long runs loop over a bounded amount of this traffic (flower-bench
// prepares at most a few GB): start_loop(L) rewrites it in place into loop
// L of a longer stream, whose ground truth follows from truth() (see
// start_loop).
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
#include "traffic/huge_page_allocator.h"

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
  // How many of each queue's packets are among the first n packets: queue
  // i's share of packets().first(n) is queue(i).first(result[i]), exactly
  // when n is a whole number of uniform rounds or no loop was shuffled.
  std::vector<size_t> queue_counts(size_t n) const;

  const std::vector<flow_truth>& truth() const noexcept { return truth_; }  // flows with >= 1 packet
  const traffic_totals& totals() const noexcept { return totals_; }
  size_t memory_bytes() const noexcept;  // frames + views

  // Rewrites the traffic in place into loop `loop` of a longer stream
  // (loop 0 is as generated; loops may come in any order). Packet time
  // moves on by loop * loop_ns(), so it keeps running from loop to loop.
  // Shuffled uniform rounds get a new random order in every loop (still
  // one packet per slot per round, so each flow's packets keep their order).
  // Without churn a loop continues the same flows: each truth flow has
  // `loops` times its counts. With churn every loop's flows are new ones:
  // loop L's flows are truth() with their keys through key_in_loop(key, L).
  // Packets trade places, but every view keeps its frame slot and its time
  // step, so frames are still read in memory order, as from a NIC ring.
  // Not while an engine reads the traffic. Cost: a pass over the views and,
  // when rounds are shuffled or flows churn, over the frames.
  void start_loop(uint64_t loop);
  uint64_t loop() const noexcept { return loop_; }
  uint64_t loop_ns() const noexcept { return loop_ns_; }
  bool loops_make_new_flows() const noexcept { return config_.churn_per_sec > 0; }

  // Bytes of memory generate() takes for `config` (frames, views, per-flow
  // state), an upper bound, without generating: callers check it against
  // the machine first.
  static size_t memory_bytes_for(const synthetic_config& config) noexcept;

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
  std::vector<uint16_t> queue_of_;  // queue of views_[i], with more than one queue
  std::vector<flow_truth> truth_;
  traffic_totals totals_;
  synthetic_config config_;
  uint64_t loop_ = 0;
  uint64_t loop_ns_ = 0;  // packet time one loop spans
};

// A flow's key in loop `loop` of churned traffic (start_loop): the client
// address changes with the loop number (IPv4: its first byte, and the
// server's, so 65536 loops are distinct; IPv6: bytes 4-7, zero in loop 0).
flow_key key_in_loop(flow_key key, uint64_t loop) noexcept;

}  // namespace flower
