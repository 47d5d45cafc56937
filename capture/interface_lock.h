#pragma once
// interface_lock: one live sensor per network device. A running sensor
// holds an flock on DIR/DEV.lock (default /run/flower) containing its pid,
// taken before any front end touches the device; a second sensor is
// refused with the holder's pid instead of detaching the first one's XDP
// program or stealing its frames.
//
//   interface_lock lock = interface_lock::acquire("eth1");  // throws interface_busy
//   xdp_source src = xdp_source::open(cfg);   // a flower_xdp found now is a dead sensor's
//   ...                                       // lock released (file removed) at scope exit
//
// The kernel drops an flock when its holder dies, even by SIGKILL, so a
// free lock with our XDP program still attached means that program is
// stale and may be replaced. The file is removed on release; acquire()
// re-checks that the file it locked is still the one at the path, so a
// release racing an acquire cannot give two sensors the lock.

#include <sys/types.h>

#include <stdexcept>
#include <string>

#include "capture/detail/unique_fd.h"

namespace flower {

// Another live process holds the device's lock.
class interface_busy : public std::runtime_error {
 public:
  interface_busy(const std::string& what, pid_t holder) : std::runtime_error(what), holder_(holder) {}
  pid_t holder() const noexcept { return holder_; }  // 0 if the file held no pid yet

 private:
  pid_t holder_;
};

class interface_lock {
 public:
  static constexpr const char* kDefaultDir = "/run/flower";

  // Creates dir (0755) if needed. Throws interface_busy naming the holder's
  // pid ("eth1 is in use: flower-sensor pid 4242 is capturing on it (lock
  // /run/flower/eth1.lock)"), std::system_error for anything else.
  static interface_lock acquire(const std::string& device, const std::string& dir = kDefaultDir);

  interface_lock() = default;
  interface_lock(interface_lock&&) noexcept = default;
  interface_lock& operator=(interface_lock&& o) noexcept;
  ~interface_lock() { release(); }

  const std::string& path() const noexcept { return path_; }
  bool held() const noexcept { return static_cast<bool>(fd_); }
  void release() noexcept;

 private:
  std::string path_;
  detail::unique_fd fd_;
};

}  // namespace flower
