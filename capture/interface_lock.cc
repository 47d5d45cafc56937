#include "capture/interface_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>
#include <utility>

namespace flower {
namespace {

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

pid_t read_pid(int fd) noexcept {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  return n > 0 ? static_cast<pid_t>(std::strtol(buf, nullptr, 10)) : 0;
}

// A holder that lost the race below unlinks its file: give up after a few
// rounds rather than spin (it cannot happen more than once per release).
constexpr int kMaxAttempts = 8;

}  // namespace

interface_lock interface_lock::acquire(const std::string& device, const std::string& dir) {
  if (device.empty() || device.find('/') != std::string::npos)
    throw std::system_error(EINVAL, std::generic_category(), "interface lock: bad device name '" + device + "'");
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("interface lock: mkdir " + dir);
  interface_lock lock;
  lock.path_ = dir + "/" + device + ".lock";
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    detail::unique_fd fd(::open(lock.path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd) throw_errno("interface lock: open " + lock.path_);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK) throw_errno("interface lock: flock " + lock.path_);
      const pid_t holder = read_pid(fd.get());
      throw interface_busy(device + " is in use: flower-sensor " +
                               (holder ? "pid " + std::to_string(holder) : std::string("(pid not yet written)")) +
                               " is capturing on it (lock " + lock.path_ + ")",
                           holder);
    }
    // The previous holder may have unlinked the file between our open and
    // flock: then we hold a lock nobody else can see. Start over.
    struct stat held {}, named {};
    if (::fstat(fd.get(), &held) != 0) throw_errno("interface lock: fstat " + lock.path_);
    if (::stat(lock.path_.c_str(), &named) != 0 || held.st_ino != named.st_ino || held.st_dev != named.st_dev)
      continue;
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
      throw_errno("interface lock: write " + lock.path_);
    lock.fd_ = std::move(fd);
    return lock;
  }
  throw std::system_error(EAGAIN, std::generic_category(), "interface lock: " + lock.path_ + " keeps changing");
}

interface_lock& interface_lock::operator=(interface_lock&& o) noexcept {
  if (this != &o) {
    release();
    path_ = std::move(o.path_);
    fd_ = std::move(o.fd_);
  }
  return *this;
}

void interface_lock::release() noexcept {
  if (!fd_) return;
  ::unlink(path_.c_str());  // while still holding it: see acquire()
  fd_.reset();
}

}  // namespace flower
