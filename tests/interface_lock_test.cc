// interface_lock (capture/interface_lock.h): one sensor per device, the
// second refused with the holder's pid, the lock gone with its holder.
#include "capture/interface_lock.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace flower {
namespace {

class InterfaceLock : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("flower-lock-" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(InterfaceLock, HolderWritesItsPidAndRemovesTheFileOnRelease) {
  {
    interface_lock lock = interface_lock::acquire("eth1", dir_);  // creates the directory
    EXPECT_TRUE(lock.held());
    EXPECT_EQ(lock.path(), dir_ + "/eth1.lock");
    EXPECT_EQ(file_text(lock.path()), std::to_string(::getpid()) + "\n");
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/eth1.lock"));
}

TEST_F(InterfaceLock, SecondAcquireIsRefusedNamingTheHolder) {
  interface_lock first = interface_lock::acquire("eth1", dir_);
  try {
    interface_lock second = interface_lock::acquire("eth1", dir_);  // another open file: flock conflicts
    FAIL() << "second lock granted";
  } catch (const interface_busy& e) {
    EXPECT_EQ(e.holder(), ::getpid());
    EXPECT_EQ(std::string(e.what()), "eth1 is in use: flower-sensor pid " + std::to_string(::getpid()) +
                                         " is capturing on it (lock " + dir_ + "/eth1.lock)");
  }
  EXPECT_TRUE(first.held());  // the refusal left the holder alone
  EXPECT_EQ(file_text(first.path()), std::to_string(::getpid()) + "\n");
  interface_lock other = interface_lock::acquire("eth2", dir_);  // other devices are independent
  EXPECT_TRUE(other.held());
}

TEST_F(InterfaceLock, ReleasedLockCanBeTakenAgain) {
  interface_lock lock = interface_lock::acquire("eth1", dir_);
  lock.release();
  EXPECT_FALSE(lock.held());
  interface_lock again = interface_lock::acquire("eth1", dir_);
  EXPECT_TRUE(again.held());
}

TEST_F(InterfaceLock, MovedLockIsReleasedOnce) {
  interface_lock a = interface_lock::acquire("eth1", dir_);
  interface_lock b = std::move(a);
  a.release();  // moved-from: nothing to release, must not unlink b's file
  EXPECT_TRUE(std::filesystem::exists(b.path()));
  EXPECT_THROW(interface_lock::acquire("eth1", dir_), interface_busy);
}

TEST_F(InterfaceLock, DeadHoldersLockIsFreeEvenWithItsFileLeftBehind) {
  // A child takes the lock and dies by SIGKILL: the file stays, with the
  // dead pid in it, but the kernel dropped the flock.
  std::filesystem::create_directories(dir_);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      interface_lock lock = interface_lock::acquire("eth1", dir_);
      ::kill(::getpid(), SIGKILL);
    } catch (...) {
    }
    ::_exit(1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_EQ(file_text(dir_ + "/eth1.lock"), std::to_string(child) + "\n");
  interface_lock lock = interface_lock::acquire("eth1", dir_);
  EXPECT_EQ(file_text(lock.path()), std::to_string(::getpid()) + "\n");
}

TEST_F(InterfaceLock, BadDeviceNameIsRejected) {
  EXPECT_THROW(interface_lock::acquire("../etc", dir_), std::system_error);
  EXPECT_THROW(interface_lock::acquire("", dir_), std::system_error);
}

}  // namespace
}  // namespace flower
