#pragma once
// run_file: flower-sensor's offline run loop (-r FILE). Reads a pcap or
// pcapng file (or stdin), applies the filter expression, meters on one thread
// or on the multi-core engine (--threads; records are the same set either
// way), writes every record into `sink` and fills the report's ledger.
//
//   sensor_report report;
//   std::atomic<bool> stop{false};            // set by SIGINT/SIGTERM
//   json_writer out(STDOUT_FILENO);
//   run_file(options, out, report, stop);     // throws capture_error on a bad file
//   out.flush();
//
// A file that ends inside a record is not an exception: what was read is
// metered and exported, and the report says input_truncated with the reason.

#include <atomic>

#include "pipeline/flow_record.h"
#include "sensor/report.h"
#include "sensor/sensor_options.h"

namespace flower {

void run_file(const sensor_options& options, record_sink& sink, sensor_report& report,
              const std::atomic<bool>& stop);

}  // namespace flower
