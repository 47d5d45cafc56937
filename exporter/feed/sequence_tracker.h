#pragma once
// sequence_tracker: a subscriber's account of each (sensor, topic) stream of
// the feed: which messages arrived, which were lost, and restarts.
//
//   sequence_tracker t;
//   sequence_event e = t.observe(msg.envelope, msg.records.size());
//   if (e.kind == sequence_event::gap) report(e.first_lost, e.last_lost, e.lost_records);
//
// Every message carries its run's per-topic seq (1, 2, ...) and, for record
// topics, record_offset (records in all earlier messages). A jump in seq is a
// gap: messages the publisher dropped or the network path lost; the jump in
// record_offset is how many records they held. A new run_id is a restarted
// publisher; the first message seen of a stream only says where we joined.

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "exporter/feed/feed_codec.h"

namespace flower {

struct sequence_event {
  enum kind_t {
    joined,     // first message of this stream: seq 1, or later if we joined late
    in_order,   // seq as expected
    gap,        // seq jumped: messages first_lost..last_lost are lost
    restarted,  // a new run of this sensor (new run_id); messages before `seq` of it are lost
    repeated,   // seq at or below one already seen: duplicate or reordered
  };
  kind_t kind = joined;
  uint64_t first_lost = 0;
  uint64_t last_lost = 0;
  uint64_t lost_messages = 0;
  uint64_t lost_records = 0;
};

struct stream_totals {
  uint64_t messages = 0;
  uint64_t records = 0;
  uint64_t lost_messages = 0;
  uint64_t lost_records = 0;
  uint64_t gaps = 0;
  uint64_t restarts = 0;
  uint64_t repeated = 0;
};

class sequence_tracker {
 public:
  sequence_event observe(const feed_envelope& env, uint64_t records);

  stream_totals totals() const;  // over all streams
  const std::map<std::pair<std::string, std::string>, stream_totals>& streams() const noexcept { return totals_; }

 private:
  struct state {
    uint64_t run_id = 0;
    uint64_t next_seq = 0;
    uint64_t next_offset = 0;
  };
  std::map<std::pair<std::string, std::string>, state> state_;  // (sensor_id, topic)
  std::map<std::pair<std::string, std::string>, stream_totals> totals_;
};

}  // namespace flower
