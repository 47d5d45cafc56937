#pragma once
// drop_ledger: one account of where every packet went, across all stages
// and all cores, so the totals reconcile with what the sources delivered.
//
//   drop_ledger l = engine.ledger();       // after run()
//   l.source_dropped = pcap_drops;         // stages outside the engine
//   l.exporter_dropped = exporter.lost();  // fill in their own numbers
//   std::fputs(to_text(l).c_str(), stderr);
//   assert(l.reconciles());
//
// Stages, in packet order:
//   source     lost before reaching the pipeline (kernel / NIC / XDP ring);
//              reported by the source, not part of `received`
//   decoder    not turned into a flow update, by decode_status reason
//   ring_full  decoded, but the shard's ring was full (live feeds only;
//              offline feeds wait instead), one counter per ring
//   metered    counted into a flow
// Identity: received == decode_failed() + ring_dropped() + metered.
// Evictions lose no packets (the flow is exported early, reason `evicted`);
// the exporter loses records, not packets. Both are listed for completeness.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/decode_status.h"
#include "pipeline/fragment_cache.h"

namespace flower {

struct drop_ledger {
  uint64_t received = 0;                               // packets sources handed to the engine
  uint64_t source_dropped = 0;                         // filled in by the caller
  std::array<uint64_t, kDecodeStatusCount> decode{};   // by reason; decode[ok] = decoded
  std::vector<uint64_t> ring_full;                     // per shard ring
  uint64_t metered = 0;                                // packets counted into flows
  fragment_counters fragments;                         // orphans are metered (port-0 flow)
  uint64_t flows_created = 0;
  uint64_t flows_evicted = 0;                          // table full: exported early
  uint64_t records_exported = 0;
  uint64_t exporter_dropped = 0;                       // records; filled in by the caller

  uint64_t decode_failed() const noexcept;
  uint64_t ring_dropped() const noexcept;
  uint64_t offered() const noexcept { return received + source_dropped; }
  bool reconciles() const noexcept { return received == decode_failed() + ring_dropped() + metered; }
};

// Human-readable, one stage per line, zero counters left out except totals.
std::string to_text(const drop_ledger& ledger);
// One JSON object: {"received":..,"decode":{"truncated_ip":..},"ring_full":[..],...}
std::string to_json(const drop_ledger& ledger);

}  // namespace flower
