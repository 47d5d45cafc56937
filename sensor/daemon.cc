#include "sensor/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <stdexcept>
#include <utility>

namespace flower {

pidfile_lock pidfile_lock::acquire(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("-b: cannot open pidfile " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    [[maybe_unused]] const ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
    pid[std::strcspn(pid, "\n")] = 0;
    ::close(fd);
    throw std::runtime_error("-b: " + path + " is locked: flower-sensor already running" +
                             (pid[0] ? std::string(" as pid ") + pid : std::string()));
  }
  return pidfile_lock(path, fd);
}

pidfile_lock::pidfile_lock(pidfile_lock&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

pidfile_lock& pidfile_lock::operator=(pidfile_lock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

pidfile_lock::~pidfile_lock() {
  if (fd_ >= 0) ::close(fd_);
}

void pidfile_lock::write_pid(pid_t pid) {
  const std::string text = std::to_string(pid) + "\n";
  if (fd_ < 0 || ::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    throw std::runtime_error("-b: cannot write pidfile " + path_ + ": " + std::strerror(errno));
}

void pidfile_lock::remove() noexcept {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // before the lock goes: no one can take a file about to vanish
  ::close(fd_);
  fd_ = -1;
}

std::string pidfile_path(const sensor_options& o) {
  return o.pidfile.empty() ? "/run/flower-sensor-" + o.device + ".pid" : o.pidfile;
}

namespace {

struct daemon_state {
  int log_fd = -1;     // --log FILE; -1: syslog
  int relay_fd = -1;   // start-up pipe to the waiting parent; -1 once started
  std::optional<pidfile_lock> pidfile;
  std::string partial; // an unfinished stderr line
};
daemon_state* g_daemon = nullptr;  // never freed: stderr writes to it until exit

void write_all(int fd, const char* p, size_t n) noexcept {
  while (n != 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void log_line(daemon_state& d, const std::string& line) noexcept {
  if (d.log_fd < 0) {
    const char* text = line.c_str();
    if (line.rfind("flower-sensor: ", 0) == 0) text += 15;  // syslog names us already
    syslog(LOG_NOTICE, "%s", text);
    return;
  }
  char stamp[40];
  const time_t now = time(nullptr);
  tm t{};
  gmtime_r(&now, &t);
  const size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ ", &t);
  std::string out(stamp, n);
  out += line;
  out += '\n';
  write_all(d.log_fd, out.data(), out.size());
}

// stderr of the daemon (fopencookie): whole lines to the log, and every byte
// to the parent while it waits for start-up.
ssize_t daemon_stderr_write(void* cookie, const char* buf, size_t size) {
  auto& d = *static_cast<daemon_state*>(cookie);
  if (d.relay_fd >= 0) write_all(d.relay_fd, buf, size);
  d.partial.append(buf, size);
  for (size_t nl; (nl = d.partial.find('\n')) != std::string::npos;) {
    log_line(d, d.partial.substr(0, nl));
    d.partial.erase(0, nl + 1);
  }
  return static_cast<ssize_t>(size);
}

void remove_pidfile() noexcept {
  if (g_daemon && g_daemon->pidfile) g_daemon->pidfile->remove();
}

[[noreturn]] void wait_for_daemon(pid_t child, int relay) {
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(relay, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  const bool started = !text.empty() && text.back() == '\0';
  if (started) text.pop_back();
  std::fputs(text.c_str(), stderr);
  std::fflush(stderr);
  if (started) _exit(0);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  _exit(WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1);
}

}  // namespace

void become_daemon(const sensor_options& o) {
  auto* d = new daemon_state;
  // Everything that can fail for a reason the user should see on the
  // terminal is done before the fork; the log first, so a refusal leaves
  // no empty pidfile behind.
  if (!o.log_file.empty()) {
    d->log_fd = ::open(o.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (d->log_fd < 0) throw std::runtime_error("-b: cannot open log " + o.log_file + ": " + std::strerror(errno));
  }
  d->pidfile = pidfile_lock::acquire(pidfile_path(o));  // the lock is shared with the child across fork
  int relay[2];
  if (::pipe2(relay, O_CLOEXEC) != 0) throw std::runtime_error(std::string("-b: pipe: ") + std::strerror(errno));
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t child = ::fork();
  if (child < 0) throw std::runtime_error(std::string("-b: fork: ") + std::strerror(errno));
  if (child > 0) {
    ::close(relay[1]);
    wait_for_daemon(child, relay[0]);
  }
  ::close(relay[0]);
  d->relay_fd = relay[1];
  ::setsid();
  signal(SIGHUP, SIG_IGN);
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  const bool stdout_tty = ::isatty(STDOUT_FILENO) == 1;
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    if (stdout_tty) ::dup2(null_fd, STDOUT_FILENO);
    // Raw writes to fd 2 (none of ours) go to the log file or nowhere.
    ::dup2(d->log_fd >= 0 ? d->log_fd : null_fd, STDERR_FILENO);
    ::close(null_fd);
  }
  if (d->log_fd < 0) openlog("flower-sensor", LOG_PID, LOG_DAEMON);
  cookie_io_functions_t io{};
  io.write = daemon_stderr_write;
  if (FILE* f = fopencookie(d, "w", io)) {
    setvbuf(f, nullptr, _IONBF, 0);
    stderr = f;
  }
  g_daemon = d;
  std::atexit(remove_pidfile);
  d->pidfile->write_pid(::getpid());
  std::fprintf(stderr, "flower-sensor: running in the background as pid %d (pidfile %s, log %s)\n", ::getpid(),
               d->pidfile->path().c_str(), o.log_file.empty() ? "syslog" : o.log_file.c_str());
  if (stdout_tty)
    std::fprintf(stderr, "flower-sensor: stdout was a terminal: records are discarded (redirect stdout to a file)\n");
}

void daemon_started() noexcept {
  if (!g_daemon || g_daemon->relay_fd < 0) return;
  write_all(g_daemon->relay_fd, "", 1);  // the NUL that means "running"
  ::close(g_daemon->relay_fd);
  g_daemon->relay_fd = -1;
}

}  // namespace flower
