// -b's pidfile, without forking: a held pidfile refuses a second holder and
// names the first one's pid; removing it frees the path; a failure to open
// is one line naming the path.
#include "sensor/daemon.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace flower {
namespace {

class PidfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/flower-pidfile-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/sensor.pid";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string contents() const {
    std::ifstream f(path_);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  std::string dir_, path_;
};

std::string refusal(const std::string& path) {
  try {
    pidfile_lock::acquire(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST_F(PidfileTest, HolderWritesItsPidAndASecondAcquireIsRefusedNamingIt) {
  pidfile_lock first = pidfile_lock::acquire(path_);
  EXPECT_TRUE(first.held());
  first.write_pid(4242);
  EXPECT_EQ(contents(), "4242\n");
  first.write_pid(17);  // replaced, not appended
  EXPECT_EQ(contents(), "17\n");
  EXPECT_EQ(refusal(path_), "-b: " + path_ + " is locked: flower-sensor already running as pid 17");
}

TEST_F(PidfileTest, LockedBeforeThePidIsWrittenStillRefuses) {
  pidfile_lock first = pidfile_lock::acquire(path_);
  EXPECT_EQ(refusal(path_), "-b: " + path_ + " is locked: flower-sensor already running");
}

TEST_F(PidfileTest, RemoveUnlinksAndFreesThePath) {
  pidfile_lock first = pidfile_lock::acquire(path_);
  first.write_pid(::getpid());
  first.remove();
  EXPECT_FALSE(first.held());
  EXPECT_FALSE(std::filesystem::exists(path_));
  pidfile_lock second = pidfile_lock::acquire(path_);
  EXPECT_TRUE(second.held());
}

TEST_F(PidfileTest, ReleasedOnDestructionButTheFileStays) {
  { pidfile_lock first = pidfile_lock::acquire(path_); }
  EXPECT_TRUE(std::filesystem::exists(path_));
  pidfile_lock again = pidfile_lock::acquire(path_);  // a stale file from a dead sensor is fine
  EXPECT_TRUE(again.held());
}

TEST_F(PidfileTest, MovedLockKeepsTheLock) {
  pidfile_lock first = pidfile_lock::acquire(path_);
  pidfile_lock moved = std::move(first);
  EXPECT_FALSE(first.held());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_TRUE(moved.held());
  EXPECT_NE(refusal(path_), "");
}

TEST_F(PidfileTest, UnopenablePathIsOneLineNamingIt) {
  const std::string bad = dir_ + "/no/such/dir/sensor.pid";
  const std::string why = refusal(bad);
  EXPECT_EQ(why.rfind("-b: cannot open pidfile " + bad + ": ", 0), 0u) << why;
  EXPECT_NE(why.find("No such file"), std::string::npos) << why;
}

TEST(PidfilePath, DefaultNamesTheDevice) {
  sensor_options o;
  o.device = "eth1";
  EXPECT_EQ(pidfile_path(o), "/run/flower-sensor-eth1.pid");
  o.pidfile = "/tmp/x.pid";
  EXPECT_EQ(pidfile_path(o), "/tmp/x.pid");
}

}  // namespace
}  // namespace flower
