// drain_timer (capture/live_drain.h): the drain at stop ends once the rings
// stay empty for the settle time, and never later than the deadline.
#include "capture/live_drain.h"

#include <gtest/gtest.h>

#include <thread>

namespace flower {
namespace {

using std::chrono::milliseconds;

TEST(DrainTimer, EmptyRingsEndTheDrainOnlyAfterTheSettleTime) {
  drain_timer t;
  EXPECT_FALSE(t.done(false));  // a frame may still be on its way
  std::this_thread::sleep_for(kDrainSettle + milliseconds(1));
  EXPECT_TRUE(t.done(false));
}

TEST(DrainTimer, FramesRestartTheSettleTime) {
  drain_timer t;
  std::this_thread::sleep_for(kDrainSettle + milliseconds(1));
  EXPECT_FALSE(t.done(true));   // frames came: keep reading
  EXPECT_FALSE(t.done(false));  // empty right after a frame: not yet
  std::this_thread::sleep_for(kDrainSettle + milliseconds(1));
  EXPECT_TRUE(t.done(false));
}

TEST(DrainTimer, HiddenFramesExtendTheSettleTime) {
  drain_timer t(milliseconds(20));  // e.g. libpcap's V3 block timeout
  std::this_thread::sleep_for(kDrainSettle + milliseconds(1));
  EXPECT_FALSE(t.done(false));
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_TRUE(t.done(false));
}

TEST(DrainTimer, ARingThatKeepsFillingEndsAtTheDeadline) {
  drain_timer t;
  const auto start = std::chrono::steady_clock::now();
  while (!t.done(true)) std::this_thread::sleep_for(milliseconds(5));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, kDrainDeadline);
  EXPECT_LT(took, kDrainDeadline + milliseconds(100));
  EXPECT_TRUE(t.deadline_passed());
}

}  // namespace
}  // namespace flower
