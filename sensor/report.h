#pragma once
// report: what flower-sensor tells at exit. The packet ledger
// (pipeline/drop_ledger.h) plus a few facts about the run, and for a live run
// the front end's counters, rendered as the --stats-json object and as the
// summary on stderr. Fields: docs/records.md ("The packet ledger").
//
//   sensor_report r;                          // filled by run_file / run_live
//   write_file(path, stats_json(r, &live));   // one object, "live" a member
//   std::fputs(to_text(r).c_str(), stderr);

#include <cstdint>
#include <optional>
#include <string>

#include "pipeline/drop_ledger.h"
#include "sensor/live_counters.h"

namespace flower {

struct sensor_report {
  drop_ledger ledger;
  unsigned threads = 0;               // metering threads (shards); 0 = not reported
  std::optional<uint64_t> hash_seed;  // the flow hash's seed, when the engine reports it
  // -r FILE: records the reader skipped (both are in ledger.source_dropped).
  struct file_skips {
    uint64_t bad_interface = 0;  // pcapng packets naming an interface the file never declared
    uint64_t bad_timestamp = 0;  // time stamps that are no time (fraction >= 1 s, pcapng overflow)
  };
  std::optional<file_skips> file;
  bool input_truncated = false;
  std::string input_error;            // why reading stopped early, if it did
};

// The --stats-json document: the ledger's object (exporter/ledger_report.h)
// with "threads", "hash_seed", "file" (-r), "input_truncated" and, when `live`
// is given, "live" added as members. Ends with a newline.
std::string stats_json(const sensor_report& report, const live_counters* live = nullptr);

// Lines for stderr: the ledger's text, then the front end's.
std::string to_text(const sensor_report& report);
std::string to_text(const live_counters& counters);

const char* name_of(capture_mode mode) noexcept;     // "xdp", "pcap", "none"
const char* name_of(xdp_attach_mode mode) noexcept;  // "native", "generic", "none"

}  // namespace flower
