// The packet ledger: one identity over every stage, the engine's share taken
// from engine_counters, and its renderings (the --stats-json object, with the
// live front end's counters as one member, and the stderr text).
#include "pipeline/drop_ledger.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "exporter/ledger_report.h"
#include "sensor/report.h"

namespace flower {
namespace {

constexpr size_t idx(decode_status s) { return static_cast<size_t>(s); }
constexpr size_t idx(end_reason r) { return static_cast<size_t>(r); }

// 100 received: 10 filtered, 3 + 2 malformed, 4 unsupported, 1 + 0 + 5 ring drops, 75 metered.
drop_ledger balanced() {
  drop_ledger l;
  l.source_dropped = 7;
  l.source_undrained = 2;
  l.received = 100;
  l.filtered = 10;
  l.decode[idx(decode_status::ok)] = 81;
  l.decode[idx(decode_status::truncated_ip)] = 3;
  l.decode[idx(decode_status::bad_ipv4_length)] = 2;
  l.decode[idx(decode_status::non_ip)] = 4;
  l.ring_full = {1, 0, 5};
  l.metered = 75;
  l.fragments = {6, 5, 1};
  l.time_jumps = 1;
  l.flows_created = 20;
  l.records[idx(end_reason::idle)] = 12;
  l.records[idx(end_reason::tcp_end)] = 3;
  l.records[idx(end_reason::shutdown)] = 4;
  l.records[idx(end_reason::evicted)] = 2;
  l.records_written = 21;
  l.output_errors = 0;
  l.exporter_dropped = 0;
  return l;
}

TEST(DropLedger, IdentityCoversFilterDecoderRingsAndFlows) {
  drop_ledger l = balanced();
  EXPECT_EQ(l.malformed(), 5u);
  EXPECT_EQ(l.unsupported(), 4u);
  EXPECT_EQ(l.decode_failed(), 9u);
  EXPECT_EQ(l.ring_dropped(), 6u);
  EXPECT_EQ(l.records_exported(), 21u);
  EXPECT_EQ(l.flows_evicted(), 2u);
  EXPECT_EQ(l.offered(), 109u);  // what was lost before `received` is not in the identity
  EXPECT_TRUE(l.reconciles());
  // One packet missing from any stage breaks it.
  for (int stage = 0; stage < 4; ++stage) {
    drop_ledger b = balanced();
    if (stage == 0) b.filtered -= 1;
    if (stage == 1) b.decode[idx(decode_status::non_ip)] -= 1;
    if (stage == 2) b.ring_full[2] -= 1;
    if (stage == 3) b.metered -= 1;
    EXPECT_FALSE(b.reconciles()) << "stage " << stage;
  }
  // Counters outside the identity do not move it.
  l.source_dropped += 1000;
  l.source_undrained += 1000;
  l.time_jumps += 1000;
  l.output_errors += 1;
  EXPECT_TRUE(l.reconciles());
}

TEST(DropLedger, EngineShareComesFromEngineCounters) {
  engine_counters c;
  c.received = 90;
  c.metered = 80;
  c.status[idx(decode_status::ok)] = 80;
  c.status[idx(decode_status::truncated_link)] = 6;
  c.status[idx(decode_status::nflog_non_ip)] = 4;
  c.fragments = {2, 1, 1};
  c.time_jumps = 3;
  c.table.flows_created = 11;
  c.table.by_reason[idx(end_reason::active)] = 5;
  c.table.by_reason[idx(end_reason::evicted)] = 1;
  drop_ledger l = drop_ledger::from_engine(c);
  EXPECT_EQ(l.received, 90u);
  EXPECT_EQ(l.metered, 80u);
  EXPECT_EQ(l.malformed(), 6u);
  EXPECT_EQ(l.unsupported(), 4u);
  EXPECT_EQ(l.fragments.orphans, 1u);
  EXPECT_EQ(l.time_jumps, 3u);
  EXPECT_EQ(l.flows_created, 11u);
  EXPECT_EQ(l.records_exported(), 6u);
  EXPECT_EQ(l.flows_evicted(), 1u);
  EXPECT_TRUE(l.ring_full.empty());
  EXPECT_TRUE(l.reconciles());
  // The filter runs before the engine: the sensor adds it on both sides.
  l.received += 15;
  l.filtered = 15;
  EXPECT_TRUE(l.reconciles());
}

TEST(LedgerJson, EveryStageByName) {
  const nlohmann::json j = nlohmann::json::parse(nlohmann::ordered_json(balanced()).dump());
  EXPECT_EQ(j["source_dropped"], 7);
  EXPECT_EQ(j["source_undrained"], 2);
  EXPECT_EQ(j["received"], 100);
  EXPECT_EQ(j["filtered"], 10);
  EXPECT_EQ(j["malformed"]["truncated_ip"], 3);
  EXPECT_EQ(j["malformed"]["bad_ipv4_length"], 2);
  EXPECT_EQ(j["malformed"]["total"], 5);
  EXPECT_FALSE(j["malformed"].contains("non_ip"));
  EXPECT_FALSE(j["malformed"].contains("ok"));
  EXPECT_EQ(j["unsupported"]["non_ip"], 4);
  EXPECT_EQ(j["unsupported"]["total"], 4);
  EXPECT_EQ(j["ring_dropped"]["total"], 6);
  EXPECT_EQ(j["ring_dropped"]["per_ring"], nlohmann::json({1, 0, 5}));
  EXPECT_EQ(j["metered"], 75);
  EXPECT_EQ(j["fragments"], nlohmann::json({{"first", 6}, {"resolved", 5}, {"orphans", 1}}));
  EXPECT_EQ(j["time_jumps"], 1);
  EXPECT_EQ(j["flows"]["created"], 20);
  EXPECT_EQ(j["flows"]["records"], 21);
  EXPECT_EQ(j["flows"]["idle"], 12);
  EXPECT_EQ(j["flows"]["active"], 0);
  EXPECT_EQ(j["flows"]["tcp_end"], 3);
  EXPECT_EQ(j["flows"]["shutdown"], 4);
  EXPECT_EQ(j["flows"]["evicted"], 2);
  EXPECT_EQ(j["output"]["records_written"], 21);
  EXPECT_EQ(j["output"]["errors"], 0);
  EXPECT_EQ(j["output"]["exporter_dropped"], 0);
  EXPECT_EQ(j["conserved"], true);
  // Every malformed and unsupported reason is listed, zero or not.
  size_t reasons = 0;
  for (size_t i = 0; i < kDecodeStatusCount; ++i) {
    const std::string name(kDecodeStatusNames[i]);
    reasons += j["malformed"].contains(name) + j["unsupported"].contains(name);
  }
  EXPECT_EQ(reasons, kDecodeStatusCount - 1);  // all but ok

  drop_ledger broken = balanced();
  broken.metered += 1;
  EXPECT_EQ(nlohmann::ordered_json(broken)["conserved"], false);
}

TEST(StatsJson, OneDocumentWithTheLiveCountersAsAMember) {
  sensor_report r;
  r.ledger = balanced();
  r.threads = 3;
  r.hash_seed = 0xfeedfacecafebeefull;
  live_counters live;
  live.device = "veth\"0";  // escaped by the library, not by hand
  live.front_end = capture_mode::xdp;
  live.xdp_mode = xdp_attach_mode::native;
  live.queues.push_back({1, false, true, 40, 2, 0, 3, 0, 0, 0, 0});
  live.program.seen = 50;
  live.program.redirected = 45;
  live.rss_note = "single RX queue: RSS not involved";
  const std::string text = stats_json(r, &live);
  ASSERT_EQ(text.back(), '\n');
  const nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["received"], 100);
  EXPECT_EQ(j["conserved"], true);
  EXPECT_EQ(j["threads"], 3);
  EXPECT_EQ(j["hash_seed"].get<uint64_t>(), 0xfeedfacecafebeefull);
  EXPECT_EQ(j["input_truncated"], false);
  EXPECT_EQ(j["live"]["device"], "veth\"0");
  EXPECT_EQ(j["live"]["front_end"], "xdp");
  EXPECT_EQ(j["live"]["xdp_mode"], "native");
  EXPECT_EQ(j["live"]["timestamps"], "batch-clock");
  ASSERT_EQ(j["live"]["queues"].size(), 1u);
  const auto& q = j["live"]["queues"][0];
  EXPECT_EQ(q["queue"], 1);
  EXPECT_EQ(q["bind"], "copy");
  EXPECT_EQ(q["busy_poll"], true);
  EXPECT_EQ(q["rx_packets"], 40);
  EXPECT_EQ(q["rx_dropped"], 2);
  EXPECT_EQ(q["rx_ring_full"], 3);
  EXPECT_EQ(j["live"]["program"]["redirected"], 45);
  EXPECT_FALSE(j["live"].contains("pcap"));
  EXPECT_EQ(j["live"]["rss"], nlohmann::json({{"checked", false}, {"symmetric", false},
                                              {"note", "single RX queue: RSS not involved"}}));
}

TEST(StatsJson, FileRunHasNoLiveMemberAndNoUnreportedFacts) {
  sensor_report r;
  r.ledger = balanced();
  r.input_truncated = true;
  const nlohmann::json j = nlohmann::json::parse(stats_json(r));
  EXPECT_FALSE(j.contains("live"));
  EXPECT_FALSE(j.contains("threads"));
  EXPECT_FALSE(j.contains("hash_seed"));
  EXPECT_EQ(j["input_truncated"], true);
}

TEST(StatsJson, PcapFrontEnd) {
  sensor_report r;
  live_counters live;
  live.device = "any";
  live.front_end = capture_mode::pcap;
  live.fallback_reason = "not a network interface";
  live.pcap = {10, 1, 2};
  const nlohmann::json j = nlohmann::json::parse(stats_json(r, &live));
  EXPECT_EQ(j["live"]["front_end"], "pcap");
  EXPECT_EQ(j["live"]["fallback_reason"], "not a network interface");
  EXPECT_EQ(j["live"]["pcap"], nlohmann::json({{"ps_recv", 10}, {"ps_drop", 1}, {"ps_ifdrop", 2}}));
  EXPECT_FALSE(j["live"].contains("queues"));
}

}  // namespace
}  // namespace flower
