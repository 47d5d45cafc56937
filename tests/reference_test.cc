// Every capture in ../shared/pcaps against its independent reference
// (tshark, ../shared/pcaps/make-reference): summing our records per reference
// key, packets, frame bytes and IP bytes agree in both directions, first and
// last timestamps agree, and the packets we did not meter are exactly the
// ones the reference calls non-IP.
//
// Timeouts are disabled (the reference has none), so a key's records differ
// from the reference only where a TCP end split a reused 5-tuple: summing
// per key makes that invisible, as intended.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "capture/capture_file.h"
#include "pipeline/flow_engine.h"

namespace flower {
namespace {

namespace fs = std::filesystem;

fs::path shared_pcaps() { return fs::path(FLOWER_SOURCE_DIR) / ".." / "shared" / "pcaps"; }

struct endpoint {
  std::string addr;
  uint32_t port = 0;
  auto operator<=>(const endpoint&) const = default;
};

struct ref_key {
  uint32_t proto = 0;
  uint32_t vlan = 0;
  endpoint lo, hi;  // unordered pair, lo <= hi
  auto operator<=>(const ref_key&) const = default;
};

struct side_totals {
  uint64_t packets = 0, frame_bytes = 0, ip_bytes = 0;
  bool operator==(const side_totals&) const = default;
};

struct flow_totals {
  side_totals from_lo, from_hi;
  uint64_t first_ns = UINT64_MAX, last_ns = 0;
};

std::string describe(const ref_key& k) {
  std::ostringstream s;
  s << "proto " << k.proto << " vlan " << k.vlan << " " << k.lo.addr << ":" << k.lo.port << " <-> " << k.hi.addr
    << ":" << k.hi.port;
  return s.str();
}

std::string describe(const side_totals& t) {
  std::ostringstream s;
  s << t.packets << " pkts/" << t.frame_bytes << " frame B/" << t.ip_bytes << " IP B";
  return s.str();
}

// "1700000000.123456789" -> ns
uint64_t parse_epoch_ns(const std::string& text) {
  auto dot = text.find('.');
  uint64_t sec = std::stoull(text.substr(0, dot));
  uint64_t frac = 0;
  if (dot != std::string::npos) {
    std::string f = text.substr(dot + 1);
    f.resize(9, '0');
    frac = std::stoull(f);
  }
  return sec * 1'000'000'000ull + frac;
}

struct reference {
  std::map<ref_key, flow_totals> flows;
  uint64_t non_ip = 0;
};

reference load_reference(const fs::path& tsv) {
  reference ref;
  std::ifstream in(tsv);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (line.rfind("# non_ip_packets ", 0) == 0) {
      ref.non_ip = std::stoull(line.substr(17));
      continue;
    }
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string col; std::getline(ss, col, '\t');) f.push_back(col);
    if (f.size() < 14) continue;
    endpoint a{f[1], static_cast<uint32_t>(std::stoul(f[2]))};
    endpoint b{f[3], static_cast<uint32_t>(std::stoul(f[4]))};
    side_totals ab{std::stoull(f[6]), std::stoull(f[7]), std::stoull(f[8])};
    side_totals ba{std::stoull(f[9]), std::stoull(f[10]), std::stoull(f[11])};
    ref_key k{static_cast<uint32_t>(std::stol(f[0])), static_cast<uint32_t>(std::stoul(f[5])), std::min(a, b),
              std::max(a, b)};
    flow_totals& t = ref.flows[k];
    if (a == b) {
      t.from_lo = ab;  // the reference counts everything as a->b
    } else if (a < b) {
      t.from_lo = ab, t.from_hi = ba;
    } else {
      t.from_lo = ba, t.from_hi = ab;
    }
    t.first_ns = parse_epoch_ns(f[12]);
    t.last_ns = parse_epoch_ns(f[13]);
  }
  return ref;
}

class collecting_sink final : public record_sink {
 public:
  void consume(std::span<const flow_record> records) override {
    records_.insert(records_.end(), records.begin(), records.end());
  }
  std::vector<flow_record> records_;
};

struct ours {
  std::map<ref_key, flow_totals> flows;
  engine_counters counters;
  uint64_t received = 0;
};

ours meter(const fs::path& capture) {
  engine_config config;
  config.table.idle_timeout_ns = 0;
  config.table.active_timeout_ns = 0;
  flow_engine engine(config);
  collecting_sink sink;
  record_buffer out(sink);
  capture_file file = capture_file::open(capture.string());
  std::array<packet_view, 256> batch;
  ours result;
  while (size_t n = file.next_batch(batch)) {
    result.received += n;
    engine.process({batch.data(), n}, out);
  }
  engine.finish(out);
  out.flush();
  result.counters = engine.counters();
  for (const flow_record& r : sink.records_) {
    endpoint a{address_string(r.key.addr_a, r.key.ip_version), r.key.port_a};
    endpoint b{address_string(r.key.addr_b, r.key.ip_version), r.key.port_b};
    ref_key k{r.key.proto, r.key.vlan, std::min(a, b), std::max(a, b)};
    flow_totals& t = result.flows[k];
    side_totals fwd{r.fwd.packets, r.fwd.frame_bytes, r.fwd.bytes};
    side_totals rev{r.rev.packets, r.rev.frame_bytes, r.rev.bytes};
    auto add = [](side_totals& to, const side_totals& x) {
      to.packets += x.packets, to.frame_bytes += x.frame_bytes, to.ip_bytes += x.ip_bytes;
    };
    if (a == b) {
      add(t.from_lo, fwd), add(t.from_lo, rev);
    } else if (a < b) {
      add(t.from_lo, fwd), add(t.from_hi, rev);
    } else {
      add(t.from_hi, fwd), add(t.from_lo, rev);
    }
    t.first_ns = std::min(t.first_ns, r.first_ns);
    t.last_ns = std::max(t.last_ns, r.last_ns);
  }
  return result;
}

std::vector<std::string> captures_with_reference() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(shared_pcaps() / "reference", ec)) {
    std::string n = e.path().filename().string();
    if (n.size() > 4 && n.ends_with(".tsv")) names.push_back(n.substr(0, n.size() - 4));
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) names.push_back("");  // one skipped instance when the set is absent
  return names;
}

class reference_test : public ::testing::TestWithParam<std::string> {};

TEST_P(reference_test, flows_match_reference) {
  const std::string name = GetParam();
  if (name.empty()) GTEST_SKIP() << "no ../shared/pcaps beside the checkout";
  const reference ref = load_reference(shared_pcaps() / "reference" / (name + ".tsv"));
  const ours got = meter(shared_pcaps() / name);

  // Conservation and the non-IP count.
  const engine_counters& c = got.counters;
  EXPECT_EQ(got.received, c.metered + c.malformed() + c.unsupported());
  EXPECT_EQ(got.received - c.metered, ref.non_ip) << "packets not metered vs reference non-IP";

  for (const auto& [key, want] : ref.flows) {
    auto it = got.flows.find(key);
    if (it == got.flows.end()) {
      ADD_FAILURE() << name << ": missing flow " << describe(key) << " (" << describe(want.from_lo) << " / "
                    << describe(want.from_hi) << ")";
      continue;
    }
    const flow_totals& have = it->second;
    EXPECT_EQ(have.from_lo, want.from_lo) << name << ": " << describe(key) << " from " << key.lo.addr << ": got "
                                          << describe(have.from_lo) << ", reference " << describe(want.from_lo);
    EXPECT_EQ(have.from_hi, want.from_hi) << name << ": " << describe(key) << " from " << key.hi.addr << ": got "
                                          << describe(have.from_hi) << ", reference " << describe(want.from_hi);
    EXPECT_EQ(have.first_ns, want.first_ns) << name << ": first timestamp of " << describe(key);
    EXPECT_EQ(have.last_ns, want.last_ns) << name << ": last timestamp of " << describe(key);
  }
  for (const auto& [key, have] : got.flows) {
    if (!ref.flows.contains(key)) {
      ADD_FAILURE() << name << ": extra flow " << describe(key) << " (" << describe(have.from_lo) << " / "
                    << describe(have.from_hi) << ")";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(shared_pcaps, reference_test, ::testing::ValuesIn(captures_with_reference()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string s = param_info.param.empty() ? "none" : param_info.param;
                           for (char& ch : s) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return s;
                         });

}  // namespace
}  // namespace flower
