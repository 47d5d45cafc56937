// CURVE on the ZeroMQ feed (docs/feed.md, "Security"): key files and their
// errors, and the publisher over real loopback sockets with right and wrong
// keys, as the CURVE server (it binds) and as the client (it connects, -s).

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "exporter/feed/feed_codec.h"
#include "exporter/feed/feed_curve.h"
#include "exporter/feed/feed_publisher.h"

namespace flower {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class temp_dir {
 public:
  temp_dir() {
    std::string t = (fs::temp_directory_path() / "flower-curve-XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~temp_dir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  fs::path path_;
};

void write(const std::string& path, const std::string& text, mode_t mode = 0600) {
  std::ofstream(path) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

TEST(CurveKeys, LibzmqHasCurve) { ASSERT_TRUE(curve_available()) << "Debian's libzmq5 is built with CURVE"; }

TEST(CurveKeys, WrittenFilesReadBack) {
  temp_dir dir;
  const curve_key_pair a = make_curve_key_pair(), b = make_curve_key_pair();
  ASSERT_NE(a.public_z85, b.public_z85);
  write_key_files(dir / "a", a);
  write_key_files(dir / "b", b);

  struct stat st {};
  ASSERT_EQ(::stat((dir / "a.secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const curve_key_pair back = read_secret_key_file(dir / "a.secret");
  EXPECT_EQ(back.public_z85, a.public_z85);
  EXPECT_EQ(back.secret_z85, a.secret_z85);
  EXPECT_EQ(read_public_key_file(dir / "a.pub"), a.public_z85);

  // An allowed-keys file is the clients' .pub files concatenated.
  std::ifstream pa(dir / "a.pub"), pb(dir / "b.pub");
  std::stringstream both;
  both << pa.rdbuf() << pb.rdbuf() << "\n# a label may follow a key\n";
  write(dir / "allowed", both.str() + b.public_z85 + " backup-sensor\n", 0644);
  EXPECT_EQ(read_allowed_keys_file(dir / "allowed"),
            (std::vector<std::string>{a.public_z85, b.public_z85, b.public_z85}));

  EXPECT_THROW(write_key_files(dir / "a", b), key_file_error);  // never overwrites
  EXPECT_EQ(read_secret_key_file(dir / "a.secret").secret_z85, a.secret_z85);
}

// Comments are lines starting with '#', which Z85 has as its last digit
// (84): the first digit of a 4-byte group is at most 2^32 / 85^4 = 82.3.
TEST(CurveKeys, NoKeyStartsWithAHash) {
  static_assert(0xFFFFFFFFull / (85ull * 85 * 85 * 85) == 82);
  for (int i = 0; i < 2000; ++i) ASSERT_NE(make_curve_key_pair().public_z85.front(), '#');
}

struct bad_file {
  const char* name;
  std::string text;
  mode_t mode;
  enum { secret, server, allowed } kind;
  std::string expect;  // in the message, after "PATH"
};

TEST(CurveKeys, BadFilesGiveOneLineNamingTheFileAndTheFault) {
  const curve_key_pair k = make_curve_key_pair(), other = make_curve_key_pair();
  const std::string good = "public-key " + k.public_z85 + "\nsecret-key " + k.secret_z85 + "\n";
  const std::vector<bad_file> cases = {
      {"missing", "", 0, bad_file::secret, ": cannot read: No such file or directory"},
      {"world_readable", good, 0644, bad_file::secret, "accessible by group or others (mode 0644); chmod 600"},
      {"group_readable", good, 0640, bad_file::secret, "(mode 0640)"},
      {"pub_as_secret", k.public_z85 + "\n", 0600, bad_file::secret, ":1: expected 'public-key KEY' or 'secret-key KEY'"},
      {"no_secret", "public-key " + k.public_z85 + "\n", 0600, bad_file::secret, ": no 'secret-key KEY' line"},
      {"mismatch", "public-key " + other.public_z85 + "\nsecret-key " + k.secret_z85 + "\n", 0600, bad_file::secret,
       ": public-key does not belong to secret-key"},
      {"short", "# c\npublic-key abc\n", 0600, bad_file::secret, ":2: 'abc' is not a CURVE key (3 characters"},
      {"twice", good + "secret-key " + k.secret_z85 + "\n", 0600, bad_file::secret, ":3: second secret-key"},
      {"not_z85", std::string(39, 'a') + ",\n", 0644, bad_file::server, ":1: '" + std::string(39, 'a') +
                                                                          ",' is not a CURVE key (a character outside Z85)"},
      {"two_server_keys", k.public_z85 + "\n" + other.public_z85 + "\n", 0644, bad_file::server,
       ": expected one public key, found 2"},
      {"empty_server", "# nothing\n", 0644, bad_file::server, ": expected one public key, found 0"},
      {"empty_allowed", "\n# nobody\n", 0644, bad_file::allowed, ": no public keys"},
  };
  temp_dir dir;
  for (const bad_file& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir / c.name;
    if (c.mode != 0) write(path, c.text, c.mode);
    try {
      if (c.kind == bad_file::secret) read_secret_key_file(path);
      else if (c.kind == bad_file::server) read_public_key_file(path);
      else read_allowed_keys_file(path);
      ADD_FAILURE() << "accepted";
    } catch (const key_file_error& e) {
      const std::string m = e.what();
      EXPECT_EQ(m.rfind(path, 0), 0u) << m;
      EXPECT_NE(m.find(c.expect), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  }
}

// --- real sockets ---------------------------------------------------------

std::vector<flow_record> records(size_t n) {
  std::vector<flow_record> v(n);
  for (size_t i = 0; i < n; ++i) {
    flow_record& r = v[i];
    r.key.ip_version = 4;
    r.key.proto = 17;
    const uint8_t a[4] = {10, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)}, b[4] = {10, 1, 0, 1};
    r.key.set_v4(r.key.addr_a, a);
    r.key.set_v4(r.key.addr_b, b);
    r.key.port_a = static_cast<uint16_t>(1024 + i);
    r.key.port_b = 53;
    r.fwd.packets = 1;
    r.fwd.bytes = 60 + i;
    r.first_ns = r.last_ns = 1'700'000'000'000'000'000ULL + i;
  }
  return v;
}

// Flow records received on `sub` until `want` or `timeout`.
size_t receive_records(zmq::socket_t& sub, size_t want, std::chrono::milliseconds timeout) {
  size_t got = 0;
  const auto end = std::chrono::steady_clock::now() + timeout;
  zmq_pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
  while (got < want && std::chrono::steady_clock::now() < end) {
    if (zmq::poll(&item, 1, 50ms) == 0) continue;
    zmq::message_t topic, payload;
    if (!sub.recv(topic, zmq::recv_flags::dontwait) || !topic.more()) continue;
    if (!sub.recv(payload, zmq::recv_flags::dontwait)) continue;
    if (topic.to_string_view() == kTopicFlow) got += decode_feed_message(payload.to_string_view()).records.size();
  }
  return got;
}

// Waits (bounded) for a condition another thread makes true.
template <class F>
bool eventually(F f, std::chrono::milliseconds timeout = 10s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!f()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

constexpr size_t kRecords = 5000;

struct sub_keys {
  std::optional<curve_key_pair> own;
  std::string server_public;
};

class CurveFeed : public ::testing::Test {
 protected:
  const curve_key_pair server = make_curve_key_pair();
  const curve_key_pair client = make_curve_key_pair();

  std::unique_ptr<feed_publisher> publisher(std::vector<std::string> allowed) {
    feed_options o;
    o.bind = {"tcp://127.0.0.1:0"};
    o.wait_when_full = true;
    o.curve.own = server;
    o.curve.allowed_z85 = std::move(allowed);
    return std::make_unique<feed_publisher>(o);
  }

  zmq::socket_t subscriber(const std::string& endpoint, const sub_keys& keys) {
    zmq::socket_t s(context_, zmq::socket_type::sub);
    s.set(zmq::sockopt::linger, 0);
    if (keys.own) {
      curve_options c;
      c.own = keys.own;
      c.server_public_z85 = keys.server_public;
      apply_curve_client(s, c);
    }
    s.set(zmq::sockopt::subscribe, kTopicFlow);
    s.connect(endpoint);
    return s;
  }

  // A subscriber the publisher must not admit: no subscription reaches it,
  // and records published meanwhile never arrive.
  void expect_shut_out(feed_publisher& pub, zmq::socket_t& sub) {
    EXPECT_EQ(pub.wait_subscribers(1, 1500ms), 0u);
    const std::vector<flow_record> r = records(kRecords);
    pub.consume(r);
    pub.close();
    EXPECT_EQ(pub.counters().records_sent, kRecords);  // sent: to nobody
    EXPECT_EQ(receive_records(sub, 1, 500ms), 0u);
    EXPECT_EQ(pub.curve_accepted(), 0u);
  }

  zmq::context_t context_{1};
};

TEST_F(CurveFeed, RightKeysDeliverEveryRecord) {
  auto pub = publisher({make_curve_key_pair().public_z85, client.public_z85});
  zmq::socket_t sub = subscriber(pub->bound_endpoints()[0], {client, server.public_z85});
  ASSERT_EQ(pub->wait_subscribers(1, 10s), 1u);
  const std::vector<flow_record> r = records(kRecords);
  for (size_t i = 0; i < kRecords; i += 700) pub->consume(std::span(r).subspan(i, std::min<size_t>(700, kRecords - i)));
  EXPECT_EQ(receive_records(sub, kRecords, 20s), kRecords);
  pub->close();
  EXPECT_EQ(pub->counters().export_dropped(), 0u);
  EXPECT_GE(pub->curve_accepted(), 1u);
  EXPECT_EQ(pub->curve_refused(), 0u);
}

TEST_F(CurveFeed, KeyNotOnTheAllowedListReceivesNothingAndIsCounted) {
  auto pub = publisher({make_curve_key_pair().public_z85});
  zmq::socket_t sub = subscriber(pub->bound_endpoints()[0], {client, server.public_z85});
  EXPECT_TRUE(eventually([&] { return pub->curve_refused() >= 1; }));
  expect_shut_out(*pub, sub);
}

TEST_F(CurveFeed, SubscriberWithoutCurveReceivesNothing) {
  auto pub = publisher({client.public_z85});
  zmq::socket_t sub = subscriber(pub->bound_endpoints()[0], {});
  expect_shut_out(*pub, sub);
  EXPECT_EQ(pub->curve_refused(), 0u);  // a plain peer fails the handshake before ZAP
}

TEST_F(CurveFeed, WrongServerKeyReceivesNothing) {
  auto pub = publisher({client.public_z85});
  zmq::socket_t sub = subscriber(pub->bound_endpoints()[0], {client, make_curve_key_pair().public_z85});
  expect_shut_out(*pub, sub);
}

// -s: the sensor connects to a collector that binds; the collector is the
// CURVE server with its own authenticator, the sensor the client.
class CurveCollector : public CurveFeed {
 protected:
  // The collector's SUB, bound, admitting `allowed`.
  void bind_collector(std::vector<std::string> allowed) {
    curve_options c;
    c.own = server;
    c.allowed_z85 = std::move(allowed);
    zap_ = std::make_unique<zap_authenticator>(context_, c.allowed_z85, counts_);
    sub_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::sub);
    sub_->set(zmq::sockopt::linger, 0);
    apply_curve_server(*sub_, c);
    sub_->set(zmq::sockopt::subscribe, kTopicFlow);
    sub_->bind("tcp://127.0.0.1:0");
  }

  std::unique_ptr<feed_publisher> sensor(const std::string& server_public) {
    feed_options o;
    o.connect = {sub_->get(zmq::sockopt::last_endpoint)};
    o.wait_when_full = true;
    o.curve.own = client;
    o.curve.server_public_z85 = server_public;
    return std::make_unique<feed_publisher>(o);
  }

  void TearDown() override {
    sub_.reset();
    zap_.reset();
  }

  zap_counters counts_;
  std::unique_ptr<zap_authenticator> zap_;
  std::unique_ptr<zmq::socket_t> sub_;
};

// A binding SUB takes in a connection (and sends its subscriptions on it)
// only while its owner calls into it, so the collector reads from the start,
// on its own thread, as a real one does; a refused sensor is shown to be
// refused while the collector is reading.
TEST_F(CurveCollector, SensorWithAnAllowedKeyDeliversEveryRecord) {
  bind_collector({client.public_z85});
  size_t got = 0;
  std::thread reader([&] { got = receive_records(*sub_, kRecords, 20s); });
  auto pub = sensor(server.public_z85);
  EXPECT_EQ(pub->wait_subscribers(1, 10s), 1u);
  pub->consume(records(kRecords));
  reader.join();
  EXPECT_EQ(got, kRecords);
  EXPECT_EQ(counts_.accepted.load(), 1u);
  EXPECT_EQ(counts_.refused.load(), 0u);
}

TEST_F(CurveCollector, SensorWithAnotherKeyIsRefused) {
  bind_collector({make_curve_key_pair().public_z85});
  size_t got = 0;
  std::thread reader([&] { got = receive_records(*sub_, 1, 3s); });
  auto pub = sensor(server.public_z85);
  EXPECT_TRUE(eventually([&] { return counts_.refused.load() >= 1; }));
  EXPECT_EQ(pub->wait_subscribers(1, 1500ms), 0u);
  pub->consume(records(100));
  reader.join();
  EXPECT_EQ(got, 0u);
  EXPECT_EQ(counts_.accepted.load(), 0u);
}

TEST_F(CurveCollector, SensorWithTheWrongServerKeyDeliversNothing) {
  bind_collector({client.public_z85});
  size_t got = 0;
  std::thread reader([&] { got = receive_records(*sub_, 1, 3s); });
  auto pub = sensor(make_curve_key_pair().public_z85);
  EXPECT_EQ(pub->wait_subscribers(1, 1500ms), 0u);
  pub->consume(records(100));
  reader.join();
  EXPECT_EQ(got, 0u);
  EXPECT_EQ(counts_.accepted.load(), 0u);
}

}  // namespace
}  // namespace flower
