#pragma once
// stop_signals: what the tools' mains do on SIGINT/SIGTERM: set a flag that
// their loops poll (no SA_RESTART, so a blocking call returns EINTR at once),
// and ignore SIGPIPE, so a vanished reader shows up as a write error, counted.
//
//   std::atomic<bool>& stop = install_stop_signals();
//   while (!stop.load(std::memory_order_relaxed)) { ... }
// The sensor's live run loop installs its own for the duration of a run
// (sensor/run_live.cc), so a stop there also drains the capture rings.

#include <signal.h>

#include <atomic>

namespace flower {

inline std::atomic<bool> g_stop_requested{false};

inline std::atomic<bool>& install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop_requested.store(true, std::memory_order_relaxed); };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return g_stop_requested;
}

}  // namespace flower
