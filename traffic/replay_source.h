#pragma once
// replay_traffic: a capture file loaded into memory and looped, with the IP
// addresses rewritten on every loop so each loop's flows are new flows.
//
//   replay_config cfg{.path = "trace.pcap", .packets = 10'000'000};
//   replay_traffic t = replay_traffic::load(cfg);   // throws capture_error
//   span_source src(t.packets());                   // pipeline/parallel_engine.h
//
// Loop L (L = 0 is the original) XORs L into bytes 1-2 of IPv4 and bytes
// 2-3 of IPv6 source and destination addresses of the outermost IP header
// (both directions of a conversation get the same change, so they still
// meet) and fixes the IPv4 header checksum; timestamps move forward by
// L * (capture duration + 1 s). Frames are copied with at most `snaplen`
// bytes; wire_len is kept. Link types: Ethernet (with VLAN tags), raw IP,
// Linux SLL/SLL2, BSD null/loop; other frames, and the inner headers of
// tunnels, are replayed unchanged.
//
// With `max_prepared`, at most that many packets are built (a power of two
// of whole passes, at least one); a longer run replays them, calling
// start_loop(m) before its m-th round over them, which turns them into
// passes m*passes() ... m*passes() + passes() - 1 of the stream above.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "pipeline/packet.h"
#include "traffic/huge_page_allocator.h"

namespace flower {

struct replay_config {
  std::string path;
  uint64_t packets = 0;      // total to produce; 0 = exactly one pass
  uint32_t snaplen = 256;    // bytes kept per frame (headers are what we meter)
  unsigned queues = 1;       // per-queue streams, split by address pair
  uint64_t max_prepared = 0; // packets built at most (see above); 0 = all of `packets`
};

class replay_traffic {
 public:
  static replay_traffic load(const replay_config& config);

  std::span<const packet_view> packets() const noexcept { return views_; }
  std::span<const packet_view> queue(unsigned i) const noexcept { return queues_[i]; }
  unsigned queue_count() const noexcept { return static_cast<unsigned>(queues_.size()); }
  uint64_t loops() const noexcept { return loops_; }  // passes over the file in memory
  uint64_t file_packets() const noexcept { return file_packets_; }
  uint64_t frame_bytes() const noexcept { return frame_bytes_; }  // sum of wire lengths

  // Rewrites the prepared packets in place into round `round` over them
  // (round 0 is as loaded): addresses and times of the passes they stand
  // for. Not while an engine reads them.
  void start_loop(uint64_t round);
  // How many of each queue's packets are among the first n packets.
  std::vector<size_t> queue_counts(size_t n) const;

 private:
  std::unique_ptr<uint8_t[]> frames_;
  using view_array = std::vector<packet_view, huge_page_allocator<packet_view>>;
  view_array views_;
  std::vector<view_array> queues_;
  std::vector<uint16_t> queue_of_;  // queue of views_[i]
  uint64_t loops_ = 0;
  uint64_t round_ = 0;
  uint64_t loop_shift_ns_ = 0;  // packet time one pass spans
  uint64_t file_packets_ = 0;
  uint64_t frame_bytes_ = 0;
};

}  // namespace flower
