#include "sensor/run_file.h"

#include <array>
#include <string>
#include <thread>

#include "capture/capture_file.h"
#include "capture/packet_filter.h"
#include "pipeline/flow_engine.h"
#include "pipeline/parallel_engine.h"
#include "pipeline/record_buffer.h"
#include "sensor/front_end.h"

namespace flower {
namespace {

bool decodable(link_type link) {
  switch (link) {
    case link_type::null:
    case link_type::ethernet:
    case link_type::ppp:
    case link_type::raw:
    case link_type::loop:
    case link_type::linux_sll:
    case link_type::ipv4:
    case link_type::ipv6:
    case link_type::nflog:
    case link_type::linux_sll2:
      return true;
  }
  return false;
}

// The file as a pipeline source: applies the filter and counts what it
// delivered and what the filter took, so the ledger starts at the file.
class filtered_file_source {
 public:
  filtered_file_source(capture_file& file, packet_filter& filter, const std::atomic<bool>& stop)
      : file_(&file), filter_(&filter), stop_(&stop) {}

  size_t next_batch(std::span<packet_view> out) noexcept {
    while (!stop_->load(std::memory_order_relaxed)) {
      const size_t n = file_->next_batch(out);
      if (n == 0) return 0;
      received_ += n;
      const size_t kept = filter_->keep_matching(out.first(n));
      filtered_ += n - kept;
      if (kept != 0) return kept;
    }
    return 0;
  }
  uint64_t received() const noexcept { return received_; }
  uint64_t filtered() const noexcept { return filtered_; }

 private:
  capture_file* file_;
  packet_filter* filter_;
  const std::atomic<bool>* stop_;
  uint64_t received_ = 0;
  uint64_t filtered_ = 0;
};

}  // namespace

void run_file(const sensor_options& opt, record_sink& sink, sensor_report& report, const std::atomic<bool>& stop) {
  capture_file file = capture_file::open(opt.read_file);
  if (!decodable(file.first_link_type())) {
    throw capture_error("unsupported link type " + std::to_string(static_cast<unsigned>(file.first_link_type())) +
                        " in " + opt.read_file + " (see docs/decoding.md for the supported ones)");
  }
  packet_filter filter = packet_filter::compile(opt.filter);
  filtered_file_source source(file, filter, stop);

  const unsigned threads = file_threads(opt.threads, std::thread::hardware_concurrency());
  drop_ledger& l = report.ledger;
  if (threads == 1) {
    flow_engine engine(opt.engine);
    record_buffer out(sink);
    std::array<packet_view, kPipelineBatch> batch;
    while (size_t n = source.next_batch(batch)) engine.process({batch.data(), n}, out);
    engine.finish(out);
    out.flush();
    l = drop_ledger::from_engine(engine.counters());
    report.hash_seed = engine.hash_seed();
  } else {
    parallel_config config;
    config.engine = opt.engine;
    config.threads = threads;
    parallel_engine engine(config, sink);
    engine.run(source);
    engine.finish();
    // One counter per shard ring, so the ledger names that stage even though
    // an offline run waits instead of dropping (all zeros).
    l = engine.ledger();
    report.hash_seed = engine.hash_seed();
  }
  // The source's own count, so the identity checks the engine's.
  l.received = source.received();
  l.filtered = source.filtered();
  report.threads = threads;
  // Records the reader skips are lost by the source (before `received`)
  // rather than not counted at all: pcapng packets naming an interface the
  // file never declared (no link type to decode them by), and records whose
  // time stamp is no time (a forged or corrupt stamp must not reach the
  // engine's clock or overflow its timeouts).
  const capture_file_counters& fc = file.counters();
  report.file = sensor_report::file_skips{fc.bad_interface, fc.bad_timestamp};
  l.source_dropped = fc.bad_interface + fc.bad_timestamp;
  if (file.truncated()) {
    report.input_truncated = true;
    report.input_error = opt.read_file + ": " + file.truncation_reason();
  }
}

}  // namespace flower
