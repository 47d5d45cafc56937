// libFuzzer target for the whole metering path: decoder, fragment cache and
// flow table, fed a sequence of frames with advancing timestamps through a
// tiny table (so eviction, idle, active and TCP-end expiry all happen).
//
// Input: repeated [link selector u8][time step u8][length u16 LE][frame].
// A time step of 255 is a forged stamp: that one packet is dated ten years
// ahead and the running time does not move (engine_counters::time_jumps).
// Seeds: tests/fuzz_seeds/engine (scripts/fuzz passes them).
// Oracle (must hold for any input):
// - every packet is accounted for: received == metered + malformed + unsupported;
// - every metered packet is in exactly one exported record after finish();
// - the table counts each record it exported, and is empty after finish();
// - records are sane: an IP version, at least one packet, first <= last;
// - a time jump is a metered packet: time_jumps <= metered.
//
//   cmake -DFLOWER_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ... && ninja fuzz_engine
//   ./fuzz_engine -max_total_time=60

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "pipeline/flow_engine.h"

namespace {

using namespace flower;

constexpr link_type kLinks[] = {link_type::ethernet, link_type::linux_sll, link_type::linux_sll2, link_type::raw,
                                link_type::ipv4,     link_type::ipv6,      link_type::null,       link_type::ppp,
                                link_type::nflog};

void check(bool ok) {
  if (!ok) std::abort();
}

class checking_sink final : public record_sink {
 public:
  void consume(std::span<const flow_record> records) override {
    for (const flow_record& r : records) {
      check(r.key.ip_version == 4 || r.key.ip_version == 6);
      check(r.fwd.packets + r.rev.packets > 0);
      check(r.first_ns <= r.last_ns);
      packets += r.fwd.packets + r.rev.packets;
      ++count;
    }
  }
  uint64_t packets = 0;
  uint64_t count = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* in, size_t size) {
  engine_config config;
  config.table.max_flows = 8;
  config.table.idle_timeout_ns = 2 * kNsPerSec;
  config.table.active_timeout_ns = 5 * kNsPerSec;
  config.table.tcp_linger_ns = kNsPerSec / 2;
  config.table.huge_pages = false;
  config.fragment_slots = 16;
  flow_engine engine(config);
  checking_sink sink;
  record_buffer out(sink, 4);

  // Each frame gets its own exactly sized buffer so ASan catches over-reads.
  std::vector<std::vector<uint8_t>> frames;
  std::vector<packet_view> views;
  uint64_t ts = 1'700'000'000ull * kNsPerSec;
  size_t pos = 0;
  while (pos + 4 <= size) {
    const link_type link = kLinks[in[pos] % std::size(kLinks)];
    const bool forged = in[pos + 1] == 255;
    if (!forged) ts += uint64_t{in[pos + 1]} * (kNsPerSec / 16);
    size_t len = in[pos + 2] | (size_t{in[pos + 3]} << 8);
    pos += 4;
    len = std::min(len, size - pos);
    frames.emplace_back(in + pos, in + pos + len);
    pos += len;
    const uint64_t stamp = forged ? ts + 10 * 365 * 86400 * kNsPerSec : ts;
    views.push_back({frames.back().data(), static_cast<uint32_t>(len), static_cast<uint32_t>(len + 4), stamp, link});
  }
  // Two batches, so the table sees state carried across calls.
  const size_t half = views.size() / 2;
  engine.process({views.data(), half}, out);
  engine.process({views.data() + half, views.size() - half}, out);
  engine.finish(out);
  out.flush();

  const engine_counters c = engine.counters();
  check(c.received == views.size());
  check(c.received == c.metered + c.malformed() + c.unsupported());
  check(sink.packets == c.metered);
  check(sink.count == c.table.records_exported);
  check(engine.shard().table().size() == 0);
  check(c.time_jumps <= c.metered);
  return 0;
}
