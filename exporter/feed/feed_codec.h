#pragma once
// feed_codec: the flower.v1 feed messages (exporter/proto/flower/v1/feed.proto,
// docs/feed.md) in both encodings, protobuf and JSON, and their decoder.
//
//   flow_encoder enc(feed_format::protobuf);
//   feed_envelope env{.sensor_id = "s1", .run_id = 7, .topic = "flow", .seq = 1};
//   std::string payload;
//   enc.encode(env, records, payload);        // fills env.interval_*, env.sent_ns
//   feed_message m = decode_feed_message(payload);   // either encoding
//   m.records[0].record == records[0] (every field), m.records[0].flow_id, ...
//
// An encoder reuses its generated messages and buffers between calls: one
// encoder per thread. They run on the
// publisher's thread, never in the pipeline. The decoder is for subscribers
// (flower-sub, tests); it throws feed_decode_error on a payload that is
// neither encoding or does not fit the schema.

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/drop_ledger.h"
#include "pipeline/flow_record.h"

namespace flower {

enum class feed_format : uint8_t { protobuf, json };
inline constexpr uint32_t kFeedSchemaVersion = 1;
inline constexpr std::string_view kTopicFlow = "flow";
inline constexpr std::string_view kTopicUpdate = "update";
inline constexpr std::string_view kTopicAgg = "agg";
inline constexpr std::string_view kTopicStats = "stats";

// "protobuf" / "json"; parse_feed_format returns false for anything else.
std::string_view name_of(feed_format f) noexcept;
bool parse_feed_format(std::string_view name, feed_format& out) noexcept;

// The Envelope message: what every feed message carries.
struct feed_envelope {
  uint32_t schema_version = kFeedSchemaVersion;
  std::string sensor_id;
  uint64_t run_id = 0;
  std::string topic;
  uint64_t seq = 0;
  uint64_t record_offset = 0;
  uint64_t interval_start_ns = 0;
  uint64_t interval_end_ns = 0;
  uint64_t sent_ns = 0;
};

// The per-run flow id (FlowRecord.flow_id): a hash of the oriented key and
// first_ns, so interim updates and the final record of one flow agree
// without the engine keeping an id.
uint64_t flow_id_of(const flow_record& record) noexcept;

// The publisher's own counters (Stats.feed).
struct feed_counters {
  uint64_t records_queued = 0;
  uint64_t records_sent = 0;
  uint64_t messages_sent = 0;
  uint64_t queue_dropped_records = 0;
  uint64_t hwm_dropped_messages = 0;
  uint64_t hwm_dropped_records = 0;
  uint64_t queue_capacity = 0;
  uint64_t queue_depth = 0;
  uint64_t subscribers = 0;
  uint64_t export_dropped() const noexcept { return queue_dropped_records + hwm_dropped_records; }
};

// One capture queue (Stats.queues), live only.
struct queue_counters {
  uint32_t queue = 0;
  uint64_t received = 0;
  uint64_t dropped = 0;
};

// Stats.rates: per second over the envelope's interval.
struct feed_rates {
  double received_per_s = 0;
  double metered_per_s = 0;
  double records_per_s = 0;
  double dropped_per_s = 0;
  double feed_records_per_s = 0;
};

struct feed_stats {
  drop_ledger ledger;
  feed_rates rates;
  feed_counters feed;
  std::vector<queue_counters> queues;
};

// Encodes "flow" messages. encode() sets env.interval_start_ns/_end_ns from
// the records (earliest first_ns, latest last_ns) and env.sent_ns, and
// replaces `out` with the payload.
class flow_encoder {
 public:
  explicit flow_encoder(feed_format format);
  ~flow_encoder();
  flow_encoder(const flow_encoder&) = delete;
  flow_encoder& operator=(const flow_encoder&) = delete;

  void encode(feed_envelope& env, std::span<const flow_record> records, std::string& out);
  feed_format format() const noexcept { return format_; }

 private:
  struct protobuf_scratch;  // generated messages, reused: cleared, not freed
  feed_format format_;
  std::unique_ptr<protobuf_scratch> pb_;
};

// A "stats" message; env.sent_ns is set here, the interval by the caller.
void encode_stats(feed_format format, feed_envelope& env, const feed_stats& stats, std::string& out);

// --- decoding (subscribers) ---------------------------------------------------

struct feed_decode_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct feed_record {
  flow_record record;
  uint64_t flow_id = 0;
  std::string community_id;
};

struct feed_message {
  feed_format format = feed_format::protobuf;
  feed_envelope envelope;
  std::vector<feed_record> records;  // topic "flow"
  // Other topics ("stats", "update", "agg"): the payload without its
  // envelope, as one line of JSON, e.g. {"stats":{...}}.
  std::string body_json;
};

// Detects the encoding by the first byte (docs/feed.md, "Encodings").
feed_message decode_feed_message(std::string_view payload);

}  // namespace flower
