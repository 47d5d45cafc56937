#include "pipeline/drop_ledger.h"

namespace flower {
namespace {

uint64_t decode_sum(const drop_ledger& l, status_category category) noexcept {
  uint64_t n = 0;
  for (size_t i = 0; i < kDecodeStatusCount; ++i)
    if (kDecodeStatusCategory[i] == category) n += l.decode[i];
  return n;
}

}  // namespace

drop_ledger drop_ledger::from_engine(const engine_counters& c) noexcept {
  drop_ledger l;
  l.received = c.received;
  l.decode = c.status;
  l.metered = c.metered;
  l.fragments = c.fragments;
  l.time_jumps = c.time_jumps;
  l.flows_created = c.table.flows_created;
  for (size_t r = 0; r < kEndReasonSlots; ++r) l.records[r] = c.table.by_reason[r];
  return l;
}

uint64_t drop_ledger::malformed() const noexcept { return decode_sum(*this, status_category::malformed); }
uint64_t drop_ledger::unsupported() const noexcept { return decode_sum(*this, status_category::unsupported); }
uint64_t drop_ledger::decode_failed() const noexcept { return malformed() + unsupported(); }

uint64_t drop_ledger::ring_dropped() const noexcept {
  uint64_t n = 0;
  for (uint64_t r : ring_full) n += r;
  return n;
}

uint64_t drop_ledger::records_exported() const noexcept {
  uint64_t n = 0;
  for (uint64_t r : records) n += r;
  return n;
}

}  // namespace flower
