#pragma once
// feed_curve: optional CURVE encryption and authentication for the feed
// (docs/feed.md, "Security"): key files, and the ZAP handler that admits
// only listed client keys.
//
//   curve_key_pair me = read_secret_key_file("sensor.secret");   // throws key_file_error
//   curve_options c{me, {}, read_allowed_keys_file("allowed.pub")};
//   zap_counters counts;
//   zap_authenticator zap(context, c.allowed, counts);  // before the first bind
//   apply_curve_server(socket, c); socket.bind(...);    // this side binds: CURVE server
//   apply_curve_client(socket, c); socket.connect(...); // this side connects: CURVE client
//
// libzmq copies a socket's options into each endpoint when it binds or
// connects, so one socket can be the server on its bound endpoints and the
// client on its connected ones.
//
// Key files are text; a key is 40 characters of Z85 (zmq_curve_keypair):
// - public key file (PREFIX.pub): one key line; an allowed-keys file is any
//   number of them (cat the peers' .pub files together). A key may be
//   followed by a space and a label. Blank lines and lines starting with
//   '#' are comments (no Z85 key starts with '#').
// - secret key file (PREFIX.secret, mode 0600): "public-key KEY" and
//   "secret-key KEY" lines, comments as above. A file that group or others
//   may read or write is refused, as ssh refuses such identity files.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace flower {

// A key file that cannot be used: what() is "PATH: what is wrong".
class key_file_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct curve_key_pair {
  std::string public_z85;  // 40 characters
  std::string secret_z85;
};

// Whether this libzmq was built with CURVE (zmq_has("curve")).
bool curve_available() noexcept;
// A fresh key pair; throws std::runtime_error without CURVE.
curve_key_pair make_curve_key_pair();
// Writes PREFIX.pub and PREFIX.secret (0600); never overwrites a file.
void write_key_files(const std::string& prefix, const curve_key_pair& keys);

curve_key_pair read_secret_key_file(const std::string& path);
std::string read_public_key_file(const std::string& path);                 // exactly one key
std::vector<std::string> read_allowed_keys_file(const std::string& path);  // at least one key

// No key pair: no CURVE (plain TCP/IPC).
struct curve_options {
  std::optional<curve_key_pair> own;
  std::string server_public_z85;         // for connected endpoints
  std::vector<std::string> allowed_z85;  // clients admitted on bound endpoints
  bool enabled() const noexcept { return own.has_value(); }
};

// Set the socket's options for the endpoints bound (server) or connected
// (client) next; nothing without a key pair.
void apply_curve_server(zmq::socket_t& socket, const curve_options& curve);
void apply_curve_client(zmq::socket_t& socket, const curve_options& curve);

struct zap_counters {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused{0};  // CURVE clients whose key is not allowed
};

// Answers ZeroMQ's authentication requests (ZAP, inproc://zeromq.zap.01)
// for every CURVE server socket of `context`: a client whose public key is
// in `allowed_z85` is admitted, any other refused and counted. Binds in the
// constructor (throws if the context already has a handler), answers on its
// own thread, stops and closes its socket in the destructor, which must run
// before the context is closed. `counters` must outlive it.
class zap_authenticator {
 public:
  zap_authenticator(zmq::context_t& context, const std::vector<std::string>& allowed_z85, zap_counters& counters);
  ~zap_authenticator();
  zap_authenticator(const zap_authenticator&) = delete;
  zap_authenticator& operator=(const zap_authenticator&) = delete;

 private:
  struct state;
  void run() noexcept;

  std::unique_ptr<state> state_;
  zap_counters& counters_;
  std::thread thread_;
};

}  // namespace flower
