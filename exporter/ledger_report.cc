#include "exporter/ledger_report.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace flower {
namespace {

nlohmann::ordered_json reasons(const drop_ledger& l, status_category category) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  uint64_t total = 0;
  for (size_t i = 0; i < kDecodeStatusCount; ++i) {
    if (kDecodeStatusCategory[i] != category) continue;
    j[std::string(kDecodeStatusNames[i])] = l.decode[i];
    total += l.decode[i];
  }
  j["total"] = total;
  return j;
}

uint64_t by(const drop_ledger& l, end_reason r) { return l.records[static_cast<size_t>(r)]; }

__attribute__((format(printf, 2, 3))) void appendf(std::string& s, const char* fmt, ...) {
  char buf[256];
  va_list args;
  va_start(args, fmt);
  const int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  if (n > 0) s.append(buf, std::min(static_cast<size_t>(n), sizeof buf - 1));
}

unsigned long long ull(uint64_t v) { return v; }

}  // namespace

void to_json(nlohmann::ordered_json& j, const drop_ledger& l) {
  j = nlohmann::ordered_json{
      {"source_dropped", l.source_dropped},
      {"source_undrained", l.source_undrained},
      {"received", l.received},
      {"filtered", l.filtered},
      {"malformed", reasons(l, status_category::malformed)},
      {"unsupported", reasons(l, status_category::unsupported)},
      {"ring_dropped", {{"total", l.ring_dropped()}, {"per_ring", l.ring_full}}},
      {"metered", l.metered},
      {"fragments", {{"first", l.fragments.first}, {"resolved", l.fragments.resolved}, {"orphans", l.fragments.orphans}}},
      {"time_jumps", l.time_jumps},
      {"flows",
       {{"created", l.flows_created},
        {"records", l.records_exported()},
        {"idle", by(l, end_reason::idle)},
        {"active", by(l, end_reason::active)},
        {"tcp_end", by(l, end_reason::tcp_end)},
        {"shutdown", by(l, end_reason::shutdown)},
        {"evicted", by(l, end_reason::evicted)}}},
      {"output",
       {{"records_written", l.records_written}, {"errors", l.output_errors}, {"exporter_dropped", l.exporter_dropped}}},
      {"conserved", l.reconciles()},
  };
}

std::string to_text(const drop_ledger& l) {
  std::string s;
  appendf(s, "packets: %llu received, %llu metered, %llu filtered, %llu malformed, %llu unsupported\n",
          ull(l.received), ull(l.metered), ull(l.filtered), ull(l.malformed()), ull(l.unsupported()));
  if (l.ring_dropped() != 0 || l.source_dropped != 0 || l.source_undrained != 0) {
    appendf(s, "drops: %llu at full shard rings; not received: %llu by the capture front end, %llu left undrained at stop\n",
            ull(l.ring_dropped()), ull(l.source_dropped), ull(l.source_undrained));
    for (size_t i = 0; i < l.ring_full.size(); ++i)
      if (l.ring_full[i] != 0) appendf(s, "  ring %zu: %llu dropped\n", i, ull(l.ring_full[i]));
  }
  for (size_t i = 0; i < kDecodeStatusCount; ++i) {
    if (kDecodeStatusCategory[i] == status_category::none || l.decode[i] == 0) continue;
    appendf(s, "  %-11s %-18.*s %llu  (%.*s)\n",
            kDecodeStatusCategory[i] == status_category::malformed ? "malformed" : "unsupported",
            static_cast<int>(kDecodeStatusNames[i].size()), kDecodeStatusNames[i].data(), ull(l.decode[i]),
            static_cast<int>(kDecodeStatusText[i].size()), kDecodeStatusText[i].data());
  }
  appendf(s, "flows: %llu created, %llu records (idle %llu, active %llu, tcp_end %llu, shutdown %llu, evicted %llu)\n",
          ull(l.flows_created), ull(l.records_exported()), ull(by(l, end_reason::idle)), ull(by(l, end_reason::active)),
          ull(by(l, end_reason::tcp_end)), ull(by(l, end_reason::shutdown)), ull(by(l, end_reason::evicted)));
  if (l.fragments.orphans != 0)
    appendf(s, "fragments: %llu later fragments without a first fragment (metered with ports 0)\n",
            ull(l.fragments.orphans));
  if (l.time_jumps != 0)
    appendf(s, "time jumps: %llu packets stamped far ahead of the others (metered; the clock did not follow)\n",
            ull(l.time_jumps));
  if (l.output_errors != 0) s += "output: write errors, records were lost\n";
  if (l.exporter_dropped != 0) appendf(s, "output: the exporter dropped %llu records\n", ull(l.exporter_dropped));
  if (!l.reconciles())
    appendf(s, "ledger: DOES NOT balance: received %llu != filtered + decode failed + ring dropped + metered = %llu\n",
            ull(l.received), ull(l.filtered + l.decode_failed() + l.ring_dropped() + l.metered));
  return s;
}

}  // namespace flower
