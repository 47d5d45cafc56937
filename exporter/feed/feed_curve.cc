#include "exporter/feed/feed_curve.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <system_error>
#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace flower {
namespace {

constexpr size_t kZ85KeyChars = 40;
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

using raw_key = std::array<uint8_t, 32>;

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw key_file_error(path + ": " + what); }

// The 32 bytes of a Z85 key, or nothing if `text` is not one.
std::optional<raw_key> decode_key(const std::string& text) {
  if (text.size() != kZ85KeyChars) return std::nullopt;
  raw_key k;
  if (zmq_z85_decode(k.data(), text.c_str()) == nullptr) return std::nullopt;
  return k;
}

std::string describe_bad_key(const std::string& token) {
  if (token.size() != kZ85KeyChars)
    return "'" + token.substr(0, 48) + "' is not a CURVE key (" + std::to_string(token.size()) +
           " characters; a Z85 key has 40)";
  return "'" + token + "' is not a CURVE key (a character outside Z85)";
}

struct key_line {
  size_t number;
  std::vector<std::string> tokens;
};

// Non-comment lines, split on whitespace. Z85 includes '#', but as its
// 85th digit it cannot start a 32-byte key (the first digit of a 4-byte
// group is at most 2^32 / 85^4 < 83), so a leading '#' is a comment.
std::vector<key_line> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, std::string("cannot read: ") + std::strerror(errno));
  std::vector<key_line> out;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    std::istringstream words(line);
    key_line kl{n, {}};
    for (std::string w; words >> w;) kl.tokens.push_back(w);
    if (kl.tokens.empty()) continue;
    if (kl.tokens[0].front() == '#') continue;
    out.push_back(std::move(kl));
  }
  if (in.bad()) fail(path, std::string("read error: ") + std::strerror(errno));
  return out;
}

std::string where(const std::string& path, size_t line) { return path + ":" + std::to_string(line); }

std::vector<std::string> read_public_keys(const std::string& path) {
  std::vector<std::string> keys;
  for (const key_line& l : read_lines(path)) {
    if (!decode_key(l.tokens[0])) fail(where(path, l.number), describe_bad_key(l.tokens[0]));
    keys.push_back(l.tokens[0]);
  }
  return keys;
}

void write_file(const std::string& path, mode_t mode, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) fail(path, std::string("cannot create: ") + std::strerror(errno));
  // The umask may have narrowed the mode; the secret file must not be wider.
  const bool ok = ::fchmod(fd, mode) == 0 &&
                  ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok) fail(path, std::string("cannot write: ") + std::strerror(saved));
}

}  // namespace

bool curve_available() noexcept { return zmq_has("curve") != 0; }

curve_key_pair make_curve_key_pair() {
  char pub[kZ85KeyChars + 1], sec[kZ85KeyChars + 1];
  if (!curve_available() || zmq_curve_keypair(pub, sec) != 0)
    throw std::runtime_error("this libzmq has no CURVE support (zmq_has(\"curve\") is false)");
  return {pub, sec};
}

void write_key_files(const std::string& prefix, const curve_key_pair& keys) {
  write_file(prefix + ".pub", 0644,
             "# flower CURVE public key (flower-keys): give it to the peer; an allowed-keys\n"
             "# file is these lines, one per client.\n" +
                 keys.public_z85 + "\n");
  write_file(prefix + ".secret", 0600,
             "# flower CURVE secret key (flower-keys). Keep it private: mode 0600.\n"
             "public-key " + keys.public_z85 + "\nsecret-key " + keys.secret_z85 + "\n");
}

curve_key_pair read_secret_key_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail(path, std::string("cannot read: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    fail(path, std::string("secret key file is accessible by group or others (mode ") + mode + "); chmod 600 it");
  }
  curve_key_pair k;
  for (const key_line& l : read_lines(path)) {
    const std::string& name = l.tokens[0];
    std::string* slot = name == "public-key" ? &k.public_z85 : name == "secret-key" ? &k.secret_z85 : nullptr;
    if (slot == nullptr) fail(where(path, l.number), "expected 'public-key KEY' or 'secret-key KEY', not '" + name + "'");
    if (l.tokens.size() != 2) fail(where(path, l.number), "expected '" + name + " KEY'");
    if (!slot->empty()) fail(where(path, l.number), "second " + name);
    if (!decode_key(l.tokens[1])) fail(where(path, l.number), describe_bad_key(l.tokens[1]));
    *slot = l.tokens[1];
  }
  if (k.secret_z85.empty()) fail(path, "no 'secret-key KEY' line (is this a .pub file?)");
  if (k.public_z85.empty()) fail(path, "no 'public-key KEY' line");
  char derived[kZ85KeyChars + 1];
  if (zmq_curve_public(derived, k.secret_z85.c_str()) != 0 || k.public_z85 != derived)
    fail(path, "public-key does not belong to secret-key");
  return k;
}

std::string read_public_key_file(const std::string& path) {
  std::vector<std::string> keys = read_public_keys(path);
  if (keys.size() != 1) fail(path, "expected one public key, found " + std::to_string(keys.size()));
  return keys[0];
}

std::vector<std::string> read_allowed_keys_file(const std::string& path) {
  std::vector<std::string> keys = read_public_keys(path);
  if (keys.empty()) fail(path, "no public keys (no client could connect)");
  return keys;
}

void apply_curve_server(zmq::socket_t& socket, const curve_options& curve) {
  if (!curve.enabled()) return;
  socket.set(zmq::sockopt::curve_server, 1);
  socket.set(zmq::sockopt::curve_secretkey, curve.own->secret_z85);
  socket.set(zmq::sockopt::zap_domain, "flower");
}

void apply_curve_client(zmq::socket_t& socket, const curve_options& curve) {
  if (!curve.enabled()) return;
  socket.set(zmq::sockopt::curve_server, 0);
  socket.set(zmq::sockopt::curve_publickey, curve.own->public_z85);
  socket.set(zmq::sockopt::curve_secretkey, curve.own->secret_z85);
  socket.set(zmq::sockopt::curve_serverkey, curve.server_public_z85);
}

struct zap_authenticator::state {
  explicit state(zmq::context_t& context) : socket(context, zmq::socket_type::rep) {}
  zmq::socket_t socket;
  int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::set<raw_key> allowed;
  ~state() {
    if (wake >= 0) ::close(wake);
  }
};

zap_authenticator::zap_authenticator(zmq::context_t& context, const std::vector<std::string>& allowed_z85,
                                     zap_counters& counters)
    : state_(std::make_unique<state>(context)), counters_(counters) {
  if (state_->wake < 0) throw std::system_error(errno, std::generic_category(), "zap: eventfd");
  for (const std::string& k : allowed_z85) {
    std::optional<raw_key> raw = decode_key(k);
    if (!raw) throw std::invalid_argument("zap: " + describe_bad_key(k));
    state_->allowed.insert(*raw);
  }
  state_->socket.set(zmq::sockopt::linger, 0);
  try {
    state_->socket.bind(kZapEndpoint);  // before any CURVE server endpoint exists
  } catch (const zmq::error_t& e) {
    throw std::runtime_error(std::string("cannot start the CURVE authenticator: ") + e.what());
  }
  sigset_t all, previous;  // as the publisher's thread: signals go elsewhere
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  thread_ = std::thread([this] { run(); });
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

zap_authenticator::~zap_authenticator() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(state_->wake, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

// ZAP 1.0 (rfc.zeromq.org/spec/27): request = version, request id, domain,
// address, routing id, mechanism, credentials (CURVE: the client's 32-byte
// public key); reply = version, request id, status, text, user id, metadata.
void zap_authenticator::run() noexcept {
  zmq::socket_t& s = state_->socket;
  zmq_pollitem_t items[2] = {{s.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, state_->wake, ZMQ_POLLIN, 0}};
  try {
    for (;;) {
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(-1));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
        continue;
      }
      if (items[1].revents & ZMQ_POLLIN) return;
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> req;
      if (!zmq::recv_multipart(s, std::back_inserter(req), zmq::recv_flags::dontwait)) continue;
      bool ok = false;
      if (req.size() >= 7 && req[0].to_string_view() == "1.0" && req[5].to_string_view() == "CURVE" &&
          req[6].size() == 32) {
        raw_key k;
        std::memcpy(k.data(), req[6].data(), k.size());
        ok = state_->allowed.contains(k);
      }
      (ok ? counters_.accepted : counters_.refused).fetch_add(1, std::memory_order_relaxed);
      std::array<zmq::message_t, 6> reply{zmq::message_t(std::string_view("1.0")),
                                          zmq::message_t(req.size() > 1 ? req[1].to_string_view() : ""),
                                          zmq::message_t(std::string_view(ok ? "200" : "400")),
                                          zmq::message_t(std::string_view(ok ? "OK" : "key not allowed")),
                                          zmq::message_t(), zmq::message_t()};
      zmq::send_multipart(s, reply);
    }
  } catch (const std::exception& e) {
    // Not expected. The socket stays bound until the destructor, so later
    // requests go unanswered: fail closed, no new client is admitted.
    std::fprintf(stderr, "flower: CURVE authenticator stopped: %s; no new subscriber can be admitted\n", e.what());
  }
}

}  // namespace flower
