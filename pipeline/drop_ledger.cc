#include "pipeline/drop_ledger.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <string_view>

namespace flower {

uint64_t drop_ledger::decode_failed() const noexcept {
  uint64_t n = 0;
  for (size_t i = 0; i < kDecodeStatusCount; ++i)
    if (static_cast<decode_status>(i) != decode_status::ok) n += decode[i];
  return n;
}

uint64_t drop_ledger::ring_dropped() const noexcept {
  uint64_t n = 0;
  for (uint64_t r : ring_full) n += r;
  return n;
}

namespace {

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

std::string to_text(const drop_ledger& l) {
  std::string s;
  appendf(s, "packets offered      %llu\n", ull(l.offered()));
  appendf(s, "  source dropped     %llu\n", ull(l.source_dropped));
  appendf(s, "  received           %llu\n", ull(l.received));
  appendf(s, "  decoder dropped    %llu\n", ull(l.decode_failed()));
  for (size_t i = 0; i < kDecodeStatusCount; ++i) {
    if (static_cast<decode_status>(i) == decode_status::ok || l.decode[i] == 0) continue;
    appendf(s, "    %-22.*s %llu\n", static_cast<int>(kDecodeStatusNames[i].size()), kDecodeStatusNames[i].data(),
            ull(l.decode[i]));
  }
  appendf(s, "  ring full dropped  %llu\n", ull(l.ring_dropped()));
  for (size_t r = 0; r < l.ring_full.size(); ++r)
    if (l.ring_full[r] != 0) appendf(s, "    ring %-17zu %llu\n", r, ull(l.ring_full[r]));
  appendf(s, "  metered            %llu\n", ull(l.metered));
  appendf(s, "    fragment orphans %llu\n", ull(l.fragments.orphans));
  appendf(s, "flows created        %llu\n", ull(l.flows_created));
  appendf(s, "  evicted (table full) %llu\n", ull(l.flows_evicted));
  appendf(s, "records exported     %llu\n", ull(l.records_exported));
  appendf(s, "  exporter dropped   %llu\n", ull(l.exporter_dropped));
  appendf(s, "reconciles           %s\n", l.reconciles() ? "yes" : "NO");
  return s;
}

std::string to_json(const drop_ledger& l) {
  std::string s = "{";
  appendf(s, "\"offered\":%llu,\"source_dropped\":%llu,\"received\":%llu,", ull(l.offered()), ull(l.source_dropped),
          ull(l.received));
  appendf(s, "\"decode_failed\":%llu,\"decode\":{", ull(l.decode_failed()));
  for (size_t i = 0; i < kDecodeStatusCount; ++i) {
    appendf(s, "%s\"%.*s\":%llu", i ? "," : "", static_cast<int>(kDecodeStatusNames[i].size()),
            kDecodeStatusNames[i].data(), ull(l.decode[i]));
  }
  appendf(s, "},\"ring_dropped\":%llu,\"ring_full\":[", ull(l.ring_dropped()));
  for (size_t r = 0; r < l.ring_full.size(); ++r) appendf(s, "%s%llu", r ? "," : "", ull(l.ring_full[r]));
  appendf(s, "],\"metered\":%llu,\"fragments\":{\"first\":%llu,\"resolved\":%llu,\"orphans\":%llu},", ull(l.metered),
          ull(l.fragments.first), ull(l.fragments.resolved), ull(l.fragments.orphans));
  appendf(s, "\"flows_created\":%llu,\"flows_evicted\":%llu,\"records_exported\":%llu,\"exporter_dropped\":%llu,",
          ull(l.flows_created), ull(l.flows_evicted), ull(l.records_exported), ull(l.exporter_dropped));
  appendf(s, "\"reconciles\":%s}", l.reconciles() ? "true" : "false");
  return s;
}

}  // namespace flower
