#include "exporter/feed/sequence_tracker.h"

namespace flower {

sequence_event sequence_tracker::observe(const feed_envelope& env, uint64_t records) {
  auto key = std::make_pair(env.sensor_id, env.topic);
  stream_totals& t = totals_[key];
  ++t.messages;
  t.records += records;
  sequence_event e;
  auto [it, first] = state_.try_emplace(std::move(key));
  state& s = it->second;
  if (first) {
    e.kind = sequence_event::joined;
  } else if (env.run_id != s.run_id) {
    e.kind = sequence_event::restarted;
    ++t.restarts;
    if (env.seq > 1) {  // the new run's first messages went missing
      e.first_lost = 1;
      e.last_lost = env.seq - 1;
      e.lost_messages = env.seq - 1;
      e.lost_records = env.record_offset;
    }
  } else if (env.seq == s.next_seq) {
    e.kind = sequence_event::in_order;
  } else if (env.seq > s.next_seq) {
    e.kind = sequence_event::gap;
    e.first_lost = s.next_seq;
    e.last_lost = env.seq - 1;
    e.lost_messages = env.seq - s.next_seq;
    e.lost_records = env.record_offset > s.next_offset ? env.record_offset - s.next_offset : 0;
    ++t.gaps;
  } else {
    e.kind = sequence_event::repeated;
    ++t.repeated;
    return e;  // keep expecting what we expected
  }
  if (e.lost_messages != 0 && e.kind == sequence_event::restarted) ++t.gaps;
  t.lost_messages += e.lost_messages;
  t.lost_records += e.lost_records;
  s.run_id = env.run_id;
  s.next_seq = env.seq + 1;
  s.next_offset = env.record_offset + records;
  return e;
}

stream_totals sequence_tracker::totals() const {
  stream_totals sum;
  for (const auto& [key, t] : totals_) {
    sum.messages += t.messages;
    sum.records += t.records;
    sum.lost_messages += t.lost_messages;
    sum.lost_records += t.lost_records;
    sum.gaps += t.gaps;
    sum.restarts += t.restarts;
    sum.repeated += t.repeated;
  }
  return sum;
}

}  // namespace flower
