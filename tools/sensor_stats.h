#pragma once
// sensor_stats: the sensor's packet ledger (where every packet went) and its
// two renderings: a human summary for stderr and the --stats-json file.
//
// Conservation, checked by tests for every capture:
//   received == metered + filtered + malformed + unsupported

#include <cstdint>
#include <string>

#include "pipeline/flow_engine.h"

namespace flower {

struct sensor_stats {
  uint64_t received = 0;       // packets the source delivered
  uint64_t filtered = 0;       // rejected by the BPF filter expression
  engine_counters engine;      // decoded / metered / reasons / table
  uint64_t records_written = 0;
  uint64_t output_errors = 0;
  bool input_truncated = false;
  std::string input_error;     // why reading stopped early, if it did

  bool conserved() const noexcept {
    return received == engine.metered + filtered + engine.malformed() + engine.unsupported();
  }
};

std::string stats_to_json(const sensor_stats& stats);
std::string stats_summary(const sensor_stats& stats);  // multi-line, for stderr

}  // namespace flower
