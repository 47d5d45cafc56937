#pragma once
// sensor_stats: the sensor's packet ledger (where every packet went) and its
// two renderings: a human summary for stderr and the --stats-json file.
//
// Conservation, checked by tests for every capture:
//   received == metered + filtered + malformed + unsupported + ring_dropped
// ring_dropped: decoded packets a live multi-core run lost to a full shard
// ring (one counter per ring). source_dropped is what the capture front end
// lost before delivering (kernel / XDP socket / libpcap); it is not part of
// `received`.

#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/flow_engine.h"

namespace flower {

struct sensor_stats {
  uint64_t received = 0;       // packets the source delivered
  uint64_t filtered = 0;       // rejected by the BPF filter expression
  engine_counters engine;      // decoded / metered / reasons / table
  std::vector<uint64_t> ring_dropped;  // per shard ring (empty: one thread, no rings)
  uint64_t source_dropped = 0; // lost by the front end before `received`
  unsigned threads = 0;        // live: metering threads (shards); 0 = not reported
  uint64_t records_written = 0;
  uint64_t output_errors = 0;
  bool input_truncated = false;
  std::string input_error;     // why reading stopped early, if it did

  uint64_t ring_dropped_total() const noexcept {
    uint64_t n = 0;
    for (uint64_t r : ring_dropped) n += r;
    return n;
  }
  bool conserved() const noexcept {
    return received ==
           engine.metered + filtered + engine.malformed() + engine.unsupported() + ring_dropped_total();
  }
};

std::string stats_to_json(const sensor_stats& stats);
std::string stats_summary(const sensor_stats& stats);  // multi-line, for stderr

}  // namespace flower
