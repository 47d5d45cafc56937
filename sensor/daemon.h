#pragma once
// daemon: flower-sensor -b. The parent forks and waits: the daemon's start-up
// lines (mode report, fallbacks, or the error that stopped it) reach the
// terminal through a pipe as well as the log, so `flower-sensor -b ...` exits
// 0 only once capture runs, or with the daemon's exit code and its reason.
//
//   become_daemon(options);   // returns in the daemon only
//   ... open the front end, print what was obtained ...
//   daemon_started();         // releases the waiting parent
//
// The daemon calls setsid() (no controlling terminal), reads /dev/null,
// writes its stderr lines to --log FILE (timestamped) or syslog, keeps stdout
// only if it is not a terminal (the records go where stdout was redirected),
// holds the pidfile locked (pidfile_lock: a second daemon on it is refused)
// and removes it at exit, after --stats-json is written. The working
// directory is kept, so relative paths keep their meaning.

#include <sys/types.h>

#include <string>
#include <utility>

#include "sensor/sensor_options.h"

namespace flower {

// A pidfile held under flock(LOCK_EX) for the owner's life. The lock belongs
// to the open file: it is shared with a forked child and refused to any other
// open of the same path, in this process or another.
class pidfile_lock {
 public:
  // Opens (creates) and locks `path`. Throws std::runtime_error with one
  // line: "-b: PATH is locked: flower-sensor already running as pid N" when
  // another holder has it, or why it cannot be opened.
  static pidfile_lock acquire(const std::string& path);

  pidfile_lock(pidfile_lock&& other) noexcept;
  pidfile_lock& operator=(pidfile_lock&& other) noexcept;
  pidfile_lock(const pidfile_lock&) = delete;
  pidfile_lock& operator=(const pidfile_lock&) = delete;
  ~pidfile_lock();  // releases the lock, leaves the file

  void write_pid(pid_t pid);  // replaces the contents with "PID\n"; throws on failure
  void remove() noexcept;     // unlinks the file while still holding the lock, then releases it
  const std::string& path() const noexcept { return path_; }
  bool held() const noexcept { return fd_ >= 0; }

 private:
  pidfile_lock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

// /run/flower-sensor-DEV.pid unless --pidfile names one.
std::string pidfile_path(const sensor_options& options);

// Forks; the parent waits for daemon_started() (exit 0) or the daemon's exit
// (its code) and never returns. Setup failures the user should see on the
// terminal (log file, pidfile lock) throw before the fork.
void become_daemon(const sensor_options& options);

// Start-up is over (capture runs): release the waiting parent. No-op unless
// this process is a daemon that has not yet said so.
void daemon_started() noexcept;

}  // namespace flower
