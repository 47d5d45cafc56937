#include "tools/sensor_stats.h"

#include <cstdio>
#include <string_view>

namespace flower {
namespace {

void add(std::string& s, std::string_view key, uint64_t v, bool comma = true) {
  s += '"';
  s += key;
  s += "\":";
  s += std::to_string(v);
  if (comma) s += ',';
}

std::string reasons_json(const engine_counters& c, status_category cat) {
  std::string s = "{";
  uint64_t total = 0;
  for (size_t i = 0; i < kDecodeStatusCount; ++i) {
    if (kDecodeStatusCategory[i] != cat) continue;
    add(s, kDecodeStatusNames[i], c.status[i]);
    total += c.status[i];
  }
  add(s, "total", total, false);
  return s + "}";
}

}  // namespace

std::string stats_to_json(const sensor_stats& st) {
  const engine_counters& e = st.engine;
  std::string s = "{";
  add(s, "received", st.received);
  add(s, "metered", e.metered);
  add(s, "filtered", st.filtered);
  s += "\"malformed\":" + reasons_json(e, status_category::malformed) + ",";
  s += "\"unsupported\":" + reasons_json(e, status_category::unsupported) + ",";
  s += "\"ring_dropped\":{";
  add(s, "total", st.ring_dropped_total());
  s += "\"per_ring\":[";
  for (size_t i = 0; i < st.ring_dropped.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(st.ring_dropped[i]);
  }
  s += "]},";
  add(s, "source_dropped", st.source_dropped);
  if (st.threads != 0) add(s, "threads", st.threads);
  s += "\"fragments\":{";
  add(s, "first", e.fragments.first);
  add(s, "resolved", e.fragments.resolved);
  add(s, "orphans", e.fragments.orphans, false);
  s += "},\"flows\":{";
  add(s, "created", e.table.flows_created);
  add(s, "records", e.table.records_exported);
  add(s, "idle", e.table.by_reason[static_cast<int>(end_reason::idle)]);
  add(s, "active", e.table.by_reason[static_cast<int>(end_reason::active)]);
  add(s, "tcp_end", e.table.by_reason[static_cast<int>(end_reason::tcp_end)]);
  add(s, "shutdown", e.table.by_reason[static_cast<int>(end_reason::shutdown)]);
  add(s, "evicted", e.table.by_reason[static_cast<int>(end_reason::evicted)], false);
  s += "},\"output\":{";
  add(s, "records_written", st.records_written);
  add(s, "errors", st.output_errors, false);
  s += "},";
  s += "\"input_truncated\":";
  s += st.input_truncated ? "true," : "false,";
  s += "\"conserved\":";
  s += st.conserved() ? "true" : "false";
  s += "}\n";
  return s;
}

std::string stats_summary(const sensor_stats& st) {
  const engine_counters& e = st.engine;
  char line[256];
  std::string s;
  std::snprintf(line, sizeof line,
                "packets: %llu received, %llu metered, %llu filtered, %llu malformed, %llu unsupported\n",
                static_cast<unsigned long long>(st.received), static_cast<unsigned long long>(e.metered),
                static_cast<unsigned long long>(st.filtered), static_cast<unsigned long long>(e.malformed()),
                static_cast<unsigned long long>(e.unsupported()));
  s += line;
  if (st.ring_dropped_total() != 0 || st.source_dropped != 0) {
    std::snprintf(line, sizeof line, "drops: %llu at full shard rings, %llu by the capture front end (not received)\n",
                  static_cast<unsigned long long>(st.ring_dropped_total()),
                  static_cast<unsigned long long>(st.source_dropped));
    s += line;
    for (size_t i = 0; i < st.ring_dropped.size(); ++i) {
      if (st.ring_dropped[i] == 0) continue;
      std::snprintf(line, sizeof line, "  ring %zu: %llu dropped\n", i,
                    static_cast<unsigned long long>(st.ring_dropped[i]));
      s += line;
    }
  }
  for (size_t i = 1; i < kDecodeStatusCount; ++i) {
    if (e.status[i] == 0) continue;
    std::snprintf(line, sizeof line, "  %-11s %-18s %llu  (%s)\n",
                  kDecodeStatusCategory[i] == status_category::malformed ? "malformed" : "unsupported",
                  std::string(kDecodeStatusNames[i]).c_str(), static_cast<unsigned long long>(e.status[i]),
                  std::string(kDecodeStatusText[i]).c_str());
    s += line;
  }
  std::snprintf(line, sizeof line,
                "flows: %llu created, %llu records (idle %llu, active %llu, tcp_end %llu, shutdown %llu, evicted %llu)\n",
                static_cast<unsigned long long>(e.table.flows_created),
                static_cast<unsigned long long>(e.table.records_exported),
                static_cast<unsigned long long>(e.table.by_reason[1]),
                static_cast<unsigned long long>(e.table.by_reason[2]),
                static_cast<unsigned long long>(e.table.by_reason[3]),
                static_cast<unsigned long long>(e.table.by_reason[4]),
                static_cast<unsigned long long>(e.table.by_reason[5]));
  s += line;
  if (e.fragments.orphans != 0) {
    std::snprintf(line, sizeof line, "fragments: %llu later fragments without a first fragment (metered with ports 0)\n",
                  static_cast<unsigned long long>(e.fragments.orphans));
    s += line;
  }
  if (st.output_errors != 0) s += "output: write errors, records were lost\n";
  return s;
}

}  // namespace flower
