// Every capture in ../shared/pcaps (and the handmade ones in handmade/)
// against its independent reference (tshark via ../shared/pcaps/make-reference,
// or the hand-computed hm-*.expected.tsv): summing our records per reference
// key, packets, frame bytes and IP bytes agree in both directions, first and
// last timestamps agree, and the packets we did not meter are exactly the
// ones the reference calls non-IP.
//
// Each capture is metered three ways: by the single-threaded flow_engine and
// by the parallel_engine with 2 and 4 shards (what `--threads N` runs), since
// offline results must not depend on the thread count.
//
// Timeouts are disabled (the reference has none), so a key's records differ
// from the reference only where a TCP end split a reused 5-tuple: summing
// per key makes that invisible, as intended.
//
// Coverage is checked, not assumed: the capture list comes from the capture
// directory, a capture without a reference fails (it is never silently left
// out), and reference_set.* checks the directory, manifest.tsv and
// reference/ against one another. Flower's semantics deliberately differ from
// the reference in one place only, and it does not show up in these totals:
// a frame whose first IP header is cut before its addresses is `non-IP` to
// the reference and `truncated_ip` (malformed) to us; both leave it unmetered.

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
#include "exporter/ledger_report.h"
#include "pipeline/flow_engine.h"
#include "pipeline/parallel_engine.h"
#include "tests/shared_data.h"

namespace flower {
namespace {

namespace fs = std::filesystem;

using test_data::shared_pcaps;

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

// Counts what the file delivered, so the identity below starts at the file.
struct counting_file_source {
  capture_file* file;
  uint64_t* received;
  size_t next_batch(std::span<packet_view> out) noexcept {
    const size_t n = file->next_batch(out);
    *received += n;
    return n;
  }
};

ours meter(const fs::path& capture, unsigned threads) {
  engine_config config;
  config.table.idle_timeout_ns = 0;
  config.table.active_timeout_ns = 0;
  config.table.huge_pages = false;
  collecting_sink sink;
  capture_file file = capture_file::open(capture.string());
  ours result;
  if (threads == 1) {
    flow_engine engine(config);
    record_buffer out(sink);
    std::array<packet_view, 256> batch;
    while (size_t n = file.next_batch(batch)) {
      result.received += n;
      engine.process({batch.data(), n}, out);
    }
    engine.finish(out);
    out.flush();
    result.counters = engine.counters();
  } else {
    parallel_config pc;
    pc.engine = config;
    pc.threads = threads;
    parallel_engine engine(pc, sink);
    counting_file_source source{&file, &result.received};
    engine.run(source);
    engine.finish();
    result.counters = engine.counters();
    const drop_ledger ledger = engine.ledger();
    EXPECT_TRUE(ledger.reconciles()) << to_text(ledger);
    EXPECT_EQ(ledger.ring_dropped(), 0u) << "an offline run must wait on full rings, not drop";
    EXPECT_EQ(ledger.received, result.received);
  }
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

bool is_capture_name(const std::string& n) {
  return n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".cap");
}

// Captures relative to ../shared/pcaps: every capture file in the directory
// (not every reference: a capture whose reference went missing must fail,
// not vanish from the list) and the handmade ones.
std::vector<std::string> shared_captures() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(shared_pcaps(), ec)) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file() && is_capture_name(n)) names.push_back(n);
  }
  for (const auto& e : fs::directory_iterator(shared_pcaps() / "handmade", ec)) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file() && n.starts_with("hm-") && n.ends_with(".pcap")) names.push_back("handmade/" + n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// reference/<file>.tsv for a shared capture, handmade/<stem>.expected.tsv for
// a handmade one (same format, written by hand from the generator's keys).
fs::path reference_of(const std::string& capture) {
  if (capture.starts_with("handmade/")) {
    fs::path p = shared_pcaps() / capture;
    return p.replace_extension(".expected.tsv");
  }
  return shared_pcaps() / "reference" / (capture + ".tsv");
}

struct reference_case {
  std::string capture;  // empty: no ../shared/pcaps at all
  unsigned threads = 1;
};

void PrintTo(const reference_case& c, std::ostream* os) { *os << c.capture << " @" << c.threads; }

std::vector<reference_case> reference_cases() {
  std::vector<reference_case> cases;
  for (const std::string& n : shared_captures())
    for (unsigned threads : {1u, 2u, 4u}) cases.push_back({n, threads});
  if (cases.empty()) cases.push_back({"", 1});  // one visibly skipped instance when the set is absent
  return cases;
}

// Known deviations of the multi-threaded engine, each a bug reported to the
// pipeline's owner. A listed case is skipped with its reason (visible in the
// test output); remove the entry when the bug is fixed.
class reference_test : public ::testing::TestWithParam<reference_case> {};

TEST_P(reference_test, flows_match_reference) {
  const reference_case& param = GetParam();
  const std::string& name = param.capture;
  if (name.empty()) GTEST_SKIP() << test_data::no_shared_data(shared_pcaps());
  const fs::path tsv = reference_of(name);
  ASSERT_TRUE(fs::is_regular_file(tsv)) << name << " has no reference " << tsv
                                        << ": regenerate it with make-reference (see ../shared/pcaps/README.md)";
  const reference ref = load_reference(tsv);
  ASSERT_FALSE(ref.flows.empty() && ref.non_ip == 0) << tsv << " is empty or unreadable";
  const ours got = meter(shared_pcaps() / name, param.threads);

  // Conservation and the non-IP count.
  const engine_counters& c = got.counters;
  EXPECT_GT(got.received, 0u) << name;
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

INSTANTIATE_TEST_SUITE_P(shared_pcaps, reference_test, ::testing::ValuesIn(reference_cases()),
                         [](const ::testing::TestParamInfo<reference_case>& param_info) {
                           std::string s = param_info.param.capture.empty() ? "none" : param_info.param.capture;
                           for (char& ch : s) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return s + "_threads" + std::to_string(param_info.param.threads);
                         });

// The three lists that make up the set agree: every capture file has a
// reference and a manifest row, every reference and manifest row has its
// capture. So no capture can drop out of reference_test unnoticed.
TEST(reference_set, directory_manifest_and_references_agree) {
  std::ifstream manifest(shared_pcaps() / "manifest.tsv");
  if (!manifest) GTEST_SKIP() << test_data::no_shared_data(shared_pcaps() / "manifest.tsv");
  std::vector<std::string> listed;
  std::string line;
  std::getline(manifest, line);  // header
  while (std::getline(manifest, line)) {
    if (!line.empty()) listed.push_back(line.substr(0, line.find('\t')));
  }
  std::sort(listed.begin(), listed.end());

  std::vector<std::string> files;
  for (const std::string& n : shared_captures())
    if (!n.starts_with("handmade/")) files.push_back(n);
  EXPECT_EQ(files, listed) << "capture files in ../shared/pcaps vs manifest.tsv rows";

  std::vector<std::string> references;
  for (const auto& e : fs::directory_iterator(shared_pcaps() / "reference")) {
    const std::string n = e.path().filename().string();
    if (n.ends_with(".tsv")) references.push_back(n.substr(0, n.size() - 4));
  }
  std::sort(references.begin(), references.end());
  EXPECT_EQ(references, files) << "reference/*.tsv vs capture files";
  EXPECT_GE(files.size(), 59u) << "the shared set has 59 captures (README.md); some went missing";
}

TEST(reference_set, handmade_captures_have_expected_output) {
  const fs::path dir = shared_pcaps() / "handmade";
  if (!fs::is_directory(dir)) GTEST_SKIP() << test_data::no_shared_data(dir);
  size_t n = 0;
  for (const std::string& c : shared_captures()) {
    if (!c.starts_with("handmade/")) continue;
    ++n;
    EXPECT_TRUE(fs::is_regular_file(reference_of(c))) << c;
  }
  EXPECT_EQ(n, 5u) << "README.md lists 5 handmade captures";
}

}  // namespace
}  // namespace flower
