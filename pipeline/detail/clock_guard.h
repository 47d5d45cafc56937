#pragma once
// clock_guard: a shard's packet clock, which one forged timestamp cannot
// move. docs/flow-table.md ("Time jumps") states the rule; in short:
//
// - a packet at most kTimeJumpNs ahead of the clock moves it (as before);
// - a packet further ahead does not: it is held in a run;
// - kTimeStepPackets such packets in a row (nothing plausible between them)
//   are a real step of the clock (a pause in a capture, a clock set
//   forward), and the clock moves to the second newest of them, so one
//   forged time among them still does not count;
// - a plausible packet after a run ends it: the run's packets were time
//   jumps (counted); they were metered all the same.
//
// Sweeps read this clock. Records do not depend on when sweeps happen as long
// as the clock never passes a later packet of the shard, which is what the
// guard keeps true against a far-future stamp (docs/architecture.md,
// Determinism).
//
//   clock_guard g;
//   g.advance(newest, count, [&](size_t i) { return batch[i].ts_ns; });
//   table.expire(g.now_ns(), out);

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace flower::detail {

inline constexpr uint64_t kTimeJumpNs = 1'000'000'000ull;  // 1 s ahead of the clock is far
inline constexpr uint32_t kTimeStepPackets = 4;           // far packets in a row that are a real step

class clock_guard {
 public:
  uint64_t now_ns() const noexcept { return now_; }
  uint64_t jumps() const noexcept { return jumps_; }  // packets whose time was refused

  // After a batch of `count` metered packets in order, `newest` the largest
  // of their times: one compare when none is far ahead (nearly always),
  // else every time again, in order, through `time_at(i)`.
  template <typename TimeAt>
  void advance(uint64_t newest, size_t count, TimeAt&& time_at) noexcept {
    if (count == 0) return;
    if (plausible(newest)) [[likely]] {
      // Every packet of the batch was plausible when it came (the clock
      // only grows), so each ended any run, and the newest is the clock.
      settle(newest);
      return;
    }
    for (size_t i = 0; i < count; ++i) observe(time_at(i));
  }

  void observe(uint64_t ts) noexcept {
    if (plausible(ts)) {
      settle(ts);
      return;
    }
    if (ts >= top_) {
      second_ = top_;
      top_ = ts;
    } else if (ts > second_) {
      second_ = ts;
    }
    if (++run_ == kTimeStepPackets) take_run();
  }

  // A trusted time (a live source's wall clock): the clock moves to it, and
  // a run it has caught up with is no longer ahead.
  void tick(uint64_t now) noexcept {
    now_ = std::max(now_, now);
    if (run_ != 0 && plausible(top_)) clear_run();
  }

  // End of input. While the clock is still unset the run is every packet
  // the shard had (fewer than kTimeStepPackets), and its newest time is the
  // clock, as without a guard. Otherwise a run of two or more is a step
  // (its second newest time) and a single far packet is a jump.
  void finish() noexcept {
    if (run_ == 0) return;
    if (now_ == 0) {
      now_ = top_;
      clear_run();
    } else if (run_ >= 2) {
      take_run();
    } else {
      jumps_ += run_;
      clear_run();
    }
  }

 // At most kTimeJumpNs ahead of the clock: such a packet moves it.
  bool plausible(uint64_t ts) const noexcept { return ts <= now_ || ts - now_ <= kTimeJumpNs; }

 private:
  void settle(uint64_t ts) noexcept {
    jumps_ += run_;
    clear_run();
    now_ = std::max(now_, ts);
  }
  void take_run() noexcept {
    now_ = std::max(now_, second_);
    clear_run();
  }
  void clear_run() noexcept { run_ = 0, top_ = 0, second_ = 0; }

  uint64_t now_ = 0;
  uint64_t top_ = 0, second_ = 0;  // the run's two newest times
  uint32_t run_ = 0;                // far packets in a row, not yet taken
  uint64_t jumps_ = 0;
};

}  // namespace flower::detail
