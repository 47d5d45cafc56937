#pragma once
// drop_ledger: one account of where every packet went, from the capture
// front end to the output, across all stages and all cores. The engine and
// the sensor fill it; renderings (JSON, text) live in exporter/ledger_report.h,
// because the engine knows no output format. The identity and every field are
// documented once, in docs/records.md ("The packet ledger").
//
//   drop_ledger l = engine.ledger();       // after run(): decode, rings, flows
//   l.filtered = filter_rejects;           // stages outside the engine fill
//   l.source_dropped = pcap_drops;         // in their own numbers
//   l.records_written = writer.records_written();
//   assert(l.reconciles());
//
// Identity: received == filtered + decode_failed() + ring_dropped() + metered.
// source_dropped and source_undrained are lost before `received`; flows,
// fragments, time_jumps and the output counters describe what became of the
// metered packets and are not part of the identity.

#include <array>
#include <cstdint>
#include <vector>

#include "pipeline/decode_status.h"
#include "pipeline/flow_engine.h"
#include "pipeline/flow_record.h"
#include "pipeline/fragment_cache.h"

namespace flower {

inline constexpr size_t kEndReasonSlots = 6;  // indexed by end_reason value (0 unused)

struct drop_ledger {
  // Before the engine, not part of `received`.
  uint64_t source_dropped = 0;    // lost by the front end (kernel, NIC, XDP socket, libpcap)
  uint64_t source_undrained = 0;  // left in capture rings at stop: could not be drained in time

  // The identity.
  uint64_t received = 0;                              // packets the source delivered
  uint64_t filtered = 0;                              // rejected by the capture filter before the engine
  std::array<uint64_t, kDecodeStatusCount> decode{};  // by decode_status; decode[ok] == decoded
  std::vector<uint64_t> ring_full;                    // per shard ring (empty: one thread, no rings)
  uint64_t metered = 0;                               // packets counted into flows

  // What became of the metered packets.
  fragment_counters fragments;                        // orphans are metered (port-0 flow)
  uint64_t time_jumps = 0;                            // metered, but did not move the engine's clock
  uint64_t flows_created = 0;
  std::array<uint64_t, kEndReasonSlots> records{};    // exported by the engine, by end_reason

  // After the engine: records, not packets.
  uint64_t records_written = 0;   // by the output (stdout writer, exporter)
  uint64_t output_errors = 0;     // write errors: records lost
  uint64_t exporter_dropped = 0;  // records an exporter dropped (e.g. a full queue)

  // The engine's share (everything from `received` through `records` but
  // `filtered` and `ring_full`).
  static drop_ledger from_engine(const engine_counters& counters) noexcept;

  uint64_t decode_failed() const noexcept;  // malformed() + unsupported()
  uint64_t malformed() const noexcept;
  uint64_t unsupported() const noexcept;
  uint64_t ring_dropped() const noexcept;
  uint64_t records_exported() const noexcept;
  uint64_t flows_evicted() const noexcept { return records[static_cast<size_t>(end_reason::evicted)]; }
  uint64_t offered() const noexcept { return source_dropped + source_undrained + received; }
  bool reconciles() const noexcept { return received == filtered + decode_failed() + ring_dropped() + metered; }
};

}  // namespace flower
