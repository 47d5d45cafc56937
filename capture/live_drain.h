#pragma once
// live_drain: how long a live sensor keeps reading after SIGINT/SIGTERM, so
// that frames already in the front end's rings are metered, and what it
// could not read is counted (drop_ledger::source_undrained) rather than lost
// without a trace.
//
//   src.stop_intake();                       // XDP: no new frames into the rings
//   drain_timer drain;
//   for (bool got = true; !drain.done(got);) {
//     const size_t n = src.next_batch(views, 0);   // never waits
//     got = n != 0;
//     ... meter n frames, release ...
//   }
//   ledger.source_undrained = src.undelivered();
//
// Times are a bound, not a target: an idle ring ends the drain after
// kDrainSettle (plus what the front end hides, below); a ring that keeps
// filling (a front end whose intake is not stopped, e.g. libpcap under a
// flood) ends it at kDrainDeadline.

#include <chrono>

namespace flower {

// A full AF_XDP RX ring is 4096 frames per queue by default (32768 in
// bench/live-bench); metering runs at 0.3 Mpps or more even on a loaded
// core, so 32768 frames take ~110 ms: 200 ms drains a full XDP ring, and
// keeps a stop well inside any service manager's stop timeout and below
// what an operator notices. libpcap's 64 MiB ring can hold half a million
// small frames, more than any short bound drains: what is left is counted.
inline constexpr std::chrono::milliseconds kDrainDeadline{200};
// Frames the XDP program redirected just before stop_intake() reach the RX
// ring at the end of that NAPI poll (microseconds); 2 ms of empty rings
// means nothing more is on its way.
inline constexpr std::chrono::milliseconds kDrainSettle{2};

// A front end may hold frames out of sight for a while (libpcap's V3 block
// timeout, pcap_live_source::block_timeout_ms()): the drain then waits that
// long after the last frame, plus kDrainSettle, before it calls the rings empty.
class drain_timer {
 public:
  using clock = std::chrono::steady_clock;
  explicit drain_timer(std::chrono::milliseconds hidden = std::chrono::milliseconds{0}) noexcept
      : start_(clock::now()), last_frames_(start_), settle_(hidden + kDrainSettle) {}
  // got: the last read returned frames. True once the drain should end.
  bool done(bool got) noexcept {
    const clock::time_point now = clock::now();
    if (got) last_frames_ = now;
    if (now - start_ >= kDrainDeadline) return true;
    return !got && now - last_frames_ >= settle_;
  }
  bool deadline_passed() const noexcept { return clock::now() - start_ >= kDrainDeadline; }

 private:
  clock::time_point start_;
  clock::time_point last_frames_;
  std::chrono::milliseconds settle_;
};

}  // namespace flower
