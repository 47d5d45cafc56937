// capture_file: pcap and pcapng images built byte by byte, written to a
// temporary directory and read back; every error names its problem; a cut
// file never yields a partial record; the shared corpus matches capinfos.

#include "capture/capture_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/shared_data.h"

namespace flower {
namespace {

namespace fs = std::filesystem;
using bytes = std::vector<uint8_t>;

// ---------------------------------------------------------------------------
// Byte image builders

// Appends integers in a chosen byte order.
class writer {
 public:
  explicit writer(bool big_endian) : big_(big_endian) {}
  writer& u8(uint8_t v) {
    out_.push_back(v);
    return *this;
  }
  writer& u16(uint16_t v) { return put(v, 2); }
  writer& u32(uint32_t v) { return put(v, 4); }
  writer& u64(uint64_t v) { return put(v, 8); }
  writer& raw(const bytes& b) {
    out_.insert(out_.end(), b.begin(), b.end());
    return *this;
  }
  writer& pad4() {
    while (out_.size() % 4) out_.push_back(0);
    return *this;
  }
  const bytes& data() const { return out_; }
  size_t size() const { return out_.size(); }

 private:
  writer& put(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) {
      const int shift = big_ ? 8 * (n - 1 - i) : 8 * i;
      out_.push_back(static_cast<uint8_t>(v >> shift));
    }
    return *this;
  }
  bool big_;
  bytes out_;
};

bytes payload(size_t n, uint8_t seed) {
  bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

struct pcap_record {
  uint32_t sec, frac;
  bytes data;
  uint32_t wire_len;
};

struct pcap_image {
  bool big = false;
  bool nano = false;
  uint16_t major = 2;
  uint32_t snaplen = 65535;
  uint32_t link = 1;
  std::vector<pcap_record> records;

  bytes build() const {
    writer w(big);
    w.u32(nano ? 0xa1b23c4d : 0xa1b2c3d4).u16(major).u16(4).u32(0).u32(0).u32(snaplen).u32(link);
    for (const auto& r : records)
      w.u32(r.sec).u32(r.frac).u32(static_cast<uint32_t>(r.data.size())).u32(r.wire_len).raw(r.data);
    return w.data();
  }
};

// pcapng: each call appends one block in the current section's byte order.
class pcapng_image {
 public:
  pcapng_image& section(bool big, uint16_t major = 1) {
    big_ = big;
    writer body(big);
    body.u32(0x1a2b3c4d).u16(major).u16(0).u64(~uint64_t{0});
    return block(0x0a0d0d0a, body);
  }
  // tsresol < 0: no option (microseconds); tsoffset_s != 0 adds if_tsoffset.
  pcapng_image& interface(uint16_t link, uint32_t snaplen, int tsresol = -1, int64_t tsoffset_s = 0) {
    writer body(big_);
    body.u16(link).u16(0).u32(snaplen);
    if (tsresol >= 0) body.u16(9).u16(1).u8(static_cast<uint8_t>(tsresol)).pad4();
    if (tsoffset_s != 0) body.u16(14).u16(8).u64(static_cast<uint64_t>(tsoffset_s));
    if (tsresol >= 0 || tsoffset_s != 0) body.u16(0).u16(0);
    return block(1, body);
  }
  pcapng_image& epb(uint32_t if_id, uint64_t ticks, const bytes& data, uint32_t wire_len) {
    writer body(big_);
    body.u32(if_id).u32(static_cast<uint32_t>(ticks >> 32)).u32(static_cast<uint32_t>(ticks));
    body.u32(static_cast<uint32_t>(data.size())).u32(wire_len).raw(data).pad4();
    body.u16(1).u16(3).raw({'h', 'i', '!'}).pad4().u16(0).u16(0);  // opt_comment, then end
    return block(6, body);
  }
  pcapng_image& spb(const bytes& data, uint32_t wire_len) {
    writer body(big_);
    body.u32(wire_len).raw(data).pad4();
    return block(3, body);
  }
  pcapng_image& obsolete_pb(uint16_t if_id, uint64_t ticks, const bytes& data, uint32_t wire_len) {
    writer body(big_);
    body.u16(if_id).u16(0).u32(static_cast<uint32_t>(ticks >> 32)).u32(static_cast<uint32_t>(ticks));
    body.u32(static_cast<uint32_t>(data.size())).u32(wire_len).raw(data).pad4();
    return block(2, body);
  }
  pcapng_image& other(uint32_t type, size_t body_bytes) {
    writer body(big_);
    body.raw(payload(body_bytes, 3)).pad4();
    return block(type, body);
  }
  // A block whose leading and trailing length are `len` as given, with `body` raw.
  pcapng_image& raw_block(uint32_t type, uint32_t len, const bytes& body) {
    writer w(big_);
    w.u32(type).u32(len).raw(body).u32(len);
    out_.insert(out_.end(), w.data().begin(), w.data().end());
    return *this;
  }
  const bytes& data() const { return out_; }
  std::vector<size_t> block_ends() const { return ends_; }

 private:
  pcapng_image& block(uint32_t type, const writer& body) {
    const auto len = static_cast<uint32_t>(body.size() + 12);
    writer w(big_);
    w.u32(type).u32(len).raw(body.data()).u32(len);
    out_.insert(out_.end(), w.data().begin(), w.data().end());
    ends_.push_back(out_.size());
    return *this;
  }
  bool big_ = false;
  bytes out_;
  std::vector<size_t> ends_;
};

// ---------------------------------------------------------------------------
// Files and reading

class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "flower-capture-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const bytes& b) const {
    const std::string p = (path_ / name).string();
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    return p;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct packet_copy {
  bytes data;
  uint32_t wire_len;
  uint64_t ts_ns;
  link_type link;
  bool operator==(const packet_copy&) const = default;
};

std::vector<packet_copy> drain(capture_file& f, size_t batch = 4) {
  std::vector<packet_view> views(batch);
  std::vector<packet_copy> out;
  while (size_t n = f.next_batch(views)) {
    EXPECT_LE(n, batch);
    for (size_t i = 0; i < n; ++i) {
      const packet_view& v = views[i];
      out.push_back({bytes(v.data, v.data + v.caplen), v.wire_len, v.ts_ns, v.link});
    }
  }
  EXPECT_EQ(f.next_batch(views), 0u) << "a finished reader stays finished";
  return out;
}

std::string open_error(const std::string& path) {
  try {
    capture_file::open(path);
  } catch (const capture_error& e) {
    return e.what();
  }
  return "(no error)";
}

constexpr uint64_t sec_ns = 1000000000;

// ---------------------------------------------------------------------------
// Classic pcap

struct pcap_case {
  bool big;
  bool nano;
};

void PrintTo(const pcap_case& c, std::ostream* os) { *os << (c.big ? "big" : "little") << (c.nano ? "/ns" : "/us"); }

class classic_pcap : public ::testing::TestWithParam<pcap_case> {};

TEST_P(classic_pcap, delivers_every_field_in_order) {
  const auto [big, nano] = GetParam();
  pcap_image img;
  img.big = big;
  img.nano = nano;
  img.link = 113;  // Linux SLL
  img.records = {
      {1700000000, nano ? 123456789u : 123456u, payload(60, 1), 60},
      {1700000001, 0, payload(14, 2), 1514},  // cut by the snaplen
      {1700000002, nano ? 999999999u : 999999u, payload(1, 3), 1},
  };
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcap", img.build()));
  EXPECT_EQ(f.format(), nano ? capture_format::pcap_ns : capture_format::pcap_us);
  EXPECT_EQ(f.first_link_type(), link_type::linux_sll);

  const auto got = drain(f, 2);
  ASSERT_EQ(got.size(), 3u);
  const uint64_t scale = nano ? 1 : 1000;
  for (size_t i = 0; i < 3; ++i) {
    const auto& r = img.records[i];
    EXPECT_EQ(got[i].data, r.data) << i;
    EXPECT_EQ(got[i].wire_len, r.wire_len) << i;
    EXPECT_EQ(got[i].ts_ns, r.sec * sec_ns + r.frac * scale) << i;
    EXPECT_EQ(got[i].link, link_type::linux_sll) << i;
  }
  EXPECT_FALSE(f.truncated());
  EXPECT_EQ(f.truncation_reason(), "");
  EXPECT_EQ(f.counters().records, 3u);
}

INSTANTIATE_TEST_SUITE_P(orders_and_units, classic_pcap,
                         ::testing::Values(pcap_case{false, false}, pcap_case{true, false}, pcap_case{false, true},
                                           pcap_case{true, true}),
                         [](const auto& test) {
                           return std::string(test.param.big ? "big" : "little") + (test.param.nano ? "_ns" : "_us");
                         });

TEST(capture_file, views_point_into_one_buffer_and_stay_valid) {
  pcap_image img;
  for (uint8_t i = 0; i < 10; ++i) img.records.push_back({i, 0, payload(40 + i, i), 40u + i});
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcap", img.build()));
  std::array<packet_view, 16> batch;
  ASSERT_EQ(f.next_batch(std::span(batch.data(), 3)), 3u);
  const packet_view first = batch[0];
  ASSERT_EQ(f.next_batch(batch), 7u);
  // Zero copy: record i+1 starts 16 bytes after record i ends.
  EXPECT_EQ(batch[0].data, first.data + 40 + 16 + 41 + 16 + 42 + 16);
  EXPECT_EQ(bytes(first.data, first.data + first.caplen), payload(40, 0));
}

TEST(capture_file, masks_fcs_bits_of_the_pcap_link_type) {
  pcap_image img;
  img.link = 0x30000001;  // FCS length bits over Ethernet, as in tcpdump's nfs-attr-oobr
  img.records = {{1, 0, payload(10, 0), 10}};
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcap", img.build()));
  EXPECT_EQ(f.first_link_type(), link_type::ethernet);
  EXPECT_EQ(drain(f).at(0).link, link_type::ethernet);
}

TEST(capture_file, caplen_above_wire_len_is_delivered_as_is) {
  pcap_image img;
  img.records = {{1, 0, payload(100, 0), 60}};
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcap", img.build()));
  const auto got = drain(f);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data.size(), 100u);
  EXPECT_EQ(got[0].wire_len, 60u);
  EXPECT_FALSE(f.truncated());
}

TEST(capture_file, caplen_up_to_a_large_snaplen_is_accepted) {
  pcap_image img;
  img.snaplen = 400000;
  img.records = {{1, 0, payload(300000, 0), 300000}};
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcap", img.build()));
  EXPECT_EQ(drain(f).size(), 1u);
  EXPECT_FALSE(f.truncated());
}

TEST(capture_file, header_only_pcap_is_empty_not_truncated) {
  pcap_image img;
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcap", img.build()));
  EXPECT_TRUE(drain(f).empty());
  EXPECT_FALSE(f.truncated());
}

// ---------------------------------------------------------------------------
// pcapng

TEST(capture_file, pcapng_epb_with_default_microsecond_resolution) {
  pcapng_image img;
  img.section(false).interface(1, 0).epb(0, 1700000000123456ull, payload(61, 5), 61);
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcapng", img.data()));
  EXPECT_EQ(f.format(), capture_format::pcapng);
  EXPECT_EQ(f.first_link_type(), link_type::ethernet);
  const auto got = drain(f);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], (packet_copy{payload(61, 5), 61, 1700000000123456000ull, link_type::ethernet}));
  EXPECT_FALSE(f.truncated());
}

TEST(capture_file, pcapng_sections_interfaces_and_resolutions) {
  pcapng_image img;
  // Section 1, little endian: nanosecond Ethernet, then millisecond SLL2 with a 100 s offset.
  img.section(false)
      .interface(1, 65535, 9)
      .interface(276, 65535, 3, 100)
      .epb(1, 1700000000500ull, payload(20, 1), 20)
      .epb(0, 1700000000000000001ull, payload(30, 2), 1500);
  // Section 2, big endian: interfaces start again at 0; 2^-20 s raw IP, then 10^-12 s NFLOG.
  img.section(true)
      .interface(101, 65535, 0x80 | 20)
      .interface(239, 65535, 12)
      .epb(0, (uint64_t{1700000000} << 20) | (1u << 19), payload(28, 3), 28)
      .epb(1, 1700000000000000000ull + 7000, payload(33, 4), 33)
      .obsolete_pb(1, 3000000ull, payload(9, 5), 9);
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcapng", img.data()));
  EXPECT_EQ(f.first_link_type(), link_type::ethernet);
  const auto got = drain(f, 3);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0], (packet_copy{payload(20, 1), 20, 1700000000500ull * 1000000 + 100 * sec_ns, link_type::linux_sll2}));
  EXPECT_EQ(got[1], (packet_copy{payload(30, 2), 1500, 1700000000000000001ull, link_type::ethernet}));
  EXPECT_EQ(got[2], (packet_copy{payload(28, 3), 28, 1700000000 * sec_ns + sec_ns / 2, link_type::raw}));
  // 10^-12 s ticks: 1.7e18 + 7000 ps = 1.7e6 s + 7 ns.
  EXPECT_EQ(got[3], (packet_copy{payload(33, 4), 33, 1700000 * sec_ns + 7, link_type::nflog}));
  EXPECT_EQ(got[4], (packet_copy{payload(9, 5), 9, 3000, link_type::nflog}));  // 3e6 ps = 3 us
  EXPECT_EQ(f.counters().records, 5u);
  EXPECT_EQ(f.counters().skipped_blocks, 0u);
  EXPECT_FALSE(f.truncated()) << f.truncation_reason();
}

TEST(capture_file, pcapng_simple_packet_block_uses_interface_zero) {
  pcapng_image img;
  img.section(true)
      .interface(228, 64, 9)              // raw IPv4, snaplen 64
      .epb(0, 5000, payload(40, 1), 40)   // sets the last timestamp: 5000 ns
      .spb(payload(50, 2), 50)            // whole packet: caplen 50
      .spb(payload(68, 3), 1400)          // a writer that ignored the snaplen: cut at 64
      .spb(payload(10, 4), 10);
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcapng", img.data()));
  const auto got = drain(f);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[1], (packet_copy{payload(50, 2), 50, 5000, link_type::ipv4}));
  EXPECT_EQ(got[2], (packet_copy{payload(64, 3), 1400, 5000, link_type::ipv4}));
  // The block is padded to 4 bytes; caplen stops at the original length.
  EXPECT_EQ(got[3], (packet_copy{payload(10, 4), 10, 5000, link_type::ipv4}));
}

TEST(capture_file, spb_caplen_is_bounded_by_its_block) {
  pcapng_image img;
  img.section(false).interface(1, 0).spb(payload(20, 1), 1500);  // unlimited snaplen
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcapng", img.data()));
  const auto got = drain(f);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, payload(20, 1));
  EXPECT_EQ(got[0].wire_len, 1500u);
}

TEST(capture_file, pcapng_skips_and_counts_blocks_without_packets) {
  pcapng_image img;
  img.section(false)
      .other(0x40000bad, 7)  // custom block before any interface
      .interface(1, 0)
      .other(4, 16)  // name resolution
      .epb(0, 1, payload(10, 1), 10)
      .other(5, 24)  // interface statistics
      .epb(0, 2, payload(10, 2), 10);
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcapng", img.data()));
  EXPECT_EQ(f.first_link_type(), link_type::ethernet);
  EXPECT_EQ(drain(f).size(), 2u);
  EXPECT_EQ(f.counters().skipped_blocks, 3u);
  EXPECT_FALSE(f.truncated());
}

TEST(capture_file, pcapng_packet_for_an_undeclared_interface_is_counted_and_skipped) {
  pcapng_image img;
  img.section(false).interface(1, 0).epb(1, 1, payload(10, 1), 10).epb(0, 2, payload(10, 2), 10).section(false).spb(
      payload(10, 3), 10);  // a new section has no interface yet
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcapng", img.data()));
  const auto got = drain(f);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, payload(10, 2));
  EXPECT_EQ(f.counters().bad_interface, 2u);
  EXPECT_FALSE(f.truncated());
}

// Times the engine cannot use are skipped and counted, never delivered:
// `last_ns + idle_timeout` must not overflow, and a wrapped time would be a
// forged one. Reading goes on after them.
TEST(capture_file, pcapng_times_out_of_range_are_counted_and_skipped) {
  pcapng_image img;
  img.section(false)
      .interface(1, 0, 9)                   // 0: nanoseconds
      .interface(1, 0)                      // 1: microseconds
      .interface(1, 0, 0)                   // 2: seconds
      .interface(1, 0, 9, -100)             // 3: nanoseconds, 100 s before the ticks
      .interface(1, 0, 0x80 | 1)            // 4: half seconds
      .interface(1, 0, 9, INT64_MAX / 2)    // 5: an offset no time survives
      .epb(0, (uint64_t{1} << 62) - 1, payload(10, 1), 10)  // the last good nanosecond
      .epb(0, uint64_t{1} << 62, payload(10, 2), 10)        // 2^62 ns: would overflow last + idle
      .epb(0, ~uint64_t{0}, payload(10, 3), 10)
      .epb(1, (uint64_t{1} << 62) / 1000 + 1, payload(10, 4), 10)  // just past 2^62 ns, in microseconds
      .epb(1, ~uint64_t{0} / 1000 + 1, payload(10, 5), 10)     // ticks x 1000 wraps 2^64
      .epb(2, uint64_t{1} << 60, payload(10, 6), 10)           // seconds x 1e9 wraps
      .epb(3, 99 * sec_ns, payload(10, 7), 10)                 // before the epoch
      .epb(3, 101 * sec_ns, payload(10, 8), 10)                // 1 s after it: fine
      .epb(4, ~uint64_t{0}, payload(10, 9), 10)                // 2^63 s
      .epb(5, 1, payload(10, 10), 10)
      .obsolete_pb(0, uint64_t{1} << 63, payload(10, 11), 10)
      .spb(payload(10, 12), 10)                                // no time of its own: the last good one
      .epb(0, 1700000000 * sec_ns, payload(10, 13), 10);
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcapng", img.data()));
  const auto got = drain(f);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], (packet_copy{payload(10, 1), 10, (uint64_t{1} << 62) - 1, link_type::ethernet}));
  EXPECT_EQ(got[1], (packet_copy{payload(10, 8), 10, 1 * sec_ns, link_type::ethernet}));
  EXPECT_EQ(got[2], (packet_copy{payload(10, 12), 10, 1 * sec_ns, link_type::ethernet}));
  EXPECT_EQ(got[3].ts_ns, 1700000000 * sec_ns);
  EXPECT_EQ(f.counters().bad_timestamp, 9u);
  EXPECT_EQ(f.counters().records, 4u);
  EXPECT_FALSE(f.truncated()) << f.truncation_reason();
}

TEST_P(classic_pcap, fraction_of_a_second_or_more_is_counted_and_skipped) {
  const bool nano = GetParam().nano;
  const uint32_t one_second = nano ? 1000000000u : 1000000u;
  pcap_image img;
  img.big = GetParam().big;
  img.nano = nano;
  img.records = {{1700000000, one_second - 1, payload(12, 1), 12},
                 {1700000001, one_second, payload(13, 2), 13},
                 {1700000002, UINT32_MAX, payload(14, 3), 14},
                 {UINT32_MAX, one_second - 1, payload(15, 4), 15}};  // the latest time pcap can hold
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcap", img.build()));
  const auto got = drain(f, 1);  // a skipped record must not end a batch early or late
  ASSERT_EQ(got.size(), 2u);
  const uint64_t frac_ns = nano ? one_second - 1 : uint64_t{one_second - 1} * 1000;
  EXPECT_EQ(got[0], (packet_copy{payload(12, 1), 12, 1700000000 * sec_ns + frac_ns, link_type::ethernet}));
  EXPECT_EQ(got[1], (packet_copy{payload(15, 4), 15, uint64_t{UINT32_MAX} * sec_ns + frac_ns, link_type::ethernet}));
  EXPECT_EQ(f.counters().bad_timestamp, 2u);
  EXPECT_EQ(f.counters().records, 2u);
  EXPECT_FALSE(f.truncated()) << f.truncation_reason();
}

// ---------------------------------------------------------------------------
// Errors at open: one line naming the problem

TEST(capture_file_errors, missing_file_names_the_path_and_errno) {
  const std::string msg = open_error("/nonexistent/flower/x.pcap");
  EXPECT_NE(msg.find("/nonexistent/flower/x.pcap"), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
}

TEST(capture_file_errors, directory) {
  temp_dir dir;
  const std::string msg = open_error(dir.path().string());
  EXPECT_NE(msg.find("is a directory"), std::string::npos) << msg;
}

struct bad_file {
  const char* name;
  bytes image;
  const char* expected;
};

bytes pcapng_shb(uint32_t bom, uint16_t major) {
  writer w(false);
  w.u32(0x0a0d0d0a).u32(28).u32(bom).u16(major).u16(0).u64(~uint64_t{0}).u32(28);
  return w.data();
}

void PrintTo(const bad_file& c, std::ostream* os) { *os << c.name; }

class capture_file_bad : public ::testing::TestWithParam<bad_file> {};

TEST_P(capture_file_bad, is_refused_with_a_clear_reason) {
  temp_dir dir;
  const std::string path = dir.write("bad.cap", GetParam().image);
  const std::string msg = open_error(path);
  EXPECT_NE(msg.find(GetParam().expected), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

pcap_image pcap_with_major(uint16_t major) {
  pcap_image img;
  img.major = major;
  return img;
}

INSTANTIATE_TEST_SUITE_P(
    cases, capture_file_bad,
    ::testing::Values(
        bad_file{"empty", {}, "empty file"}, bad_file{"three_bytes", {0xd4, 0xc3, 0xb2}, "too short"},
        bad_file{"short_pcap_header", {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0}, "too short for a pcap file header"},
        bad_file{"short_pcapng_header", {0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0}, "too short for a pcapng section header"},
        bad_file{"text", {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P'},
                 "not a pcap or pcapng file (magic 0x47455420)"},
        bad_file{"modified_pcap_magic", {0x34, 0xcd, 0xb2, 0xa1, 0, 0, 0, 0}, "not a pcap or pcapng file (magic 0x34cdb2a1)"},
        bad_file{"pcap_major_3", pcap_with_major(3).build(), "unsupported pcap major version 3"},
        bad_file{"pcapng_bad_byte_order_magic", pcapng_shb(0x12345678, 1), "bad byte-order magic 0x12345678"},
        bad_file{"pcapng_major_2", pcapng_shb(0x1a2b3c4d, 2), "unsupported pcapng major version 2"}),
    [](const auto& test) { return std::string(test.param.name); });

// ---------------------------------------------------------------------------
// Damaged records stop reading; everything before them is delivered

TEST(capture_file_truncation, pcap_record_past_the_end) {
  pcap_image img;
  img.records = {{1, 0, payload(50, 1), 50}, {2, 0, payload(50, 2), 50}, {3, 0, payload(1500, 3), 1500}};
  bytes image = img.build();
  image.erase(image.end() - 100, image.end());
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcap", image));
  EXPECT_EQ(drain(f).size(), 2u);
  EXPECT_TRUE(f.truncated());
  EXPECT_EQ(f.truncation_reason(), "record 3 at offset " + std::to_string(24 + 2 * 66) +
                                       ": caplen 1500 runs past the end of the file");
}

TEST(capture_file_truncation, pcap_absurd_caplen_is_corruption) {
  pcap_image img;
  img.records = {{1, 0, payload(50, 1), 50}};
  writer tail(false);
  tail.u32(2).u32(0).u32(0x7fffffff).u32(60).raw(payload(60, 2));
  bytes image = img.build();
  image.insert(image.end(), tail.data().begin(), tail.data().end());
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcap", image));
  EXPECT_EQ(drain(f).size(), 1u);
  EXPECT_TRUE(f.truncated());
  EXPECT_NE(f.truncation_reason().find("record 2 at offset 90: caplen 2147483647"), std::string::npos)
      << f.truncation_reason();
  EXPECT_NE(f.truncation_reason().find("corrupt"), std::string::npos) << f.truncation_reason();
}

struct bad_block {
  const char* name;
  uint32_t len;
  size_t body_bytes;
  const char* expected;
};

void PrintTo(const bad_block& c, std::ostream* os) { *os << c.name; }

class pcapng_bad_block : public ::testing::TestWithParam<bad_block> {};

TEST_P(pcapng_bad_block, stops_after_the_good_blocks) {
  const auto& c = GetParam();
  pcapng_image img;
  img.section(false).interface(1, 0).epb(0, 1, payload(10, 1), 10);
  const size_t bad_offset = img.data().size();
  img.raw_block(6, c.len, payload(c.body_bytes, 9)).epb(0, 2, payload(10, 2), 10);
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcapng", img.data()));
  EXPECT_EQ(drain(f).size(), 1u);
  EXPECT_TRUE(f.truncated());
  const std::string& why = f.truncation_reason();
  EXPECT_NE(why.find("block 4 at offset " + std::to_string(bad_offset) + ": "), std::string::npos) << why;
  EXPECT_NE(why.find(c.expected), std::string::npos) << why;
}

INSTANTIATE_TEST_SUITE_P(
    cases, pcapng_bad_block,
    ::testing::Values(bad_block{"not_multiple_of_4", 42, 30, "block length 42 is not a multiple of 4"},
                      bad_block{"smaller_than_fixed_part", 24, 12, "block length 24 is smaller than the 32 bytes"},
                      bad_block{"overruns_the_file", 4000, 20, "block length 4000 runs past the end of the file"},
                      bad_block{"trailing_length_differs", 40, 32, "trailing block length"},
                      bad_block{"caplen_past_its_block", 52, 40, "runs past the end of its block"}),
    [](const auto& test) { return std::string(test.param.name); });

TEST(capture_file_truncation, later_section_with_bad_byte_order_magic_stops) {
  pcapng_image img;
  img.section(false).interface(1, 0).epb(0, 1, payload(10, 1), 10);
  const bytes shb = pcapng_shb(0xdeadbeef, 1);
  bytes image = img.data();
  image.insert(image.end(), shb.begin(), shb.end());
  temp_dir dir;
  auto f = capture_file::open(dir.write("t.pcapng", image));
  EXPECT_EQ(drain(f).size(), 1u);
  EXPECT_TRUE(f.truncated());
  EXPECT_NE(f.truncation_reason().find("bad byte-order magic 0xdeadbeef"), std::string::npos);
}

// Cut a file at every byte: opening either refuses cleanly or the reader
// delivers exactly the records that lie wholly before the cut.
void check_every_prefix(const bytes& image, const std::vector<size_t>& record_ends, size_t header_bytes) {
  temp_dir dir;
  capture_file whole = capture_file::open(dir.write("whole", image));
  const auto all = drain(whole);
  ASSERT_EQ(all.size(), record_ends.size());
  for (size_t cut = 0; cut <= image.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    const std::string path = dir.write("cut", bytes(image.begin(), image.begin() + cut));
    if (cut < header_bytes) {
      EXPECT_THROW(capture_file::open(path), capture_error);
      continue;
    }
    auto f = capture_file::open(path);
    const auto got = drain(f, 3);
    size_t whole_records = 0;
    while (whole_records < record_ends.size() && record_ends[whole_records] <= cut) ++whole_records;
    ASSERT_EQ(got.size(), whole_records);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], all[i]);
    const bool at_boundary = cut == header_bytes || std::find(record_ends.begin(), record_ends.end(), cut) !=
                                                        record_ends.end();
    EXPECT_EQ(f.truncated(), !at_boundary);
    EXPECT_EQ(f.truncation_reason().empty(), at_boundary) << f.truncation_reason();
  }
}

TEST(capture_file_truncation, pcap_cut_at_every_byte) {
  pcap_image img;
  img.big = true;
  img.records = {{1, 0, payload(17, 1), 17}, {2, 0, payload(0, 2), 0}, {3, 0, payload(33, 3), 40}};
  std::vector<size_t> ends{24 + 16 + 17, 24 + 16 + 17 + 16, 24 + 16 + 17 + 16 + 16 + 33};
  check_every_prefix(img.build(), ends, 24);
}

TEST(capture_file_truncation, pcapng_cut_at_every_byte) {
  pcapng_image img;
  img.section(false).interface(1, 0, 9).epb(0, 1, payload(13, 1), 13).other(5, 8).spb(payload(5, 2), 5);
  img.section(true).interface(101, 0).obsolete_pb(0, 9, payload(21, 3), 21).epb(0, 10, payload(3, 4), 3);
  // Packets end with blocks 3, 5, 8 and 9; other block ends are boundaries too.
  const auto ends = img.block_ends();
  const std::vector<size_t> packet_ends{ends[2], ends[4], ends[7], ends[8]};
  // Any block end is a clean stop; anything else is a truncation.
  temp_dir dir;
  capture_file whole = capture_file::open(dir.write("whole", img.data()));
  const auto all = drain(whole);
  ASSERT_EQ(all.size(), 4u);
  for (size_t cut = 0; cut <= img.data().size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    const std::string path = dir.write("cut", bytes(img.data().begin(), img.data().begin() + cut));
    if (cut < 28) {
      EXPECT_THROW(capture_file::open(path), capture_error);
      continue;
    }
    auto f = capture_file::open(path);
    const auto got = drain(f, 2);
    size_t expect = 0;
    while (expect < packet_ends.size() && packet_ends[expect] <= cut) ++expect;
    ASSERT_EQ(got.size(), expect);
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], all[i]);
    const bool boundary = std::find(ends.begin(), ends.end(), cut) != ends.end();
    EXPECT_EQ(f.truncated(), !boundary) << f.truncation_reason();
  }
}

// ---------------------------------------------------------------------------
// Standard input

TEST(capture_file, dash_reads_standard_input) {
  pcap_image img;
  img.nano = true;
  img.records = {{7, 8, payload(30, 1), 30}, {9, 10, payload(31, 2), 31}};
  temp_dir dir;
  const std::string path = dir.write("in.pcap", img.build());
  const int saved = ::dup(STDIN_FILENO);
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ::dup2(fd, STDIN_FILENO);
  ::close(fd);
  std::vector<packet_copy> got;
  bool ok = true;
  try {
    auto f = capture_file::open("-");
    got = drain(f);
  } catch (const capture_error&) {
    ok = false;
  }
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
  ASSERT_TRUE(ok);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1], (packet_copy{payload(31, 2), 31, 9 * sec_ns + 10, link_type::ethernet}));
}

TEST(capture_file, fifo_is_read_to_the_end) {
  pcap_image img;
  img.records = {{1, 0, payload(30, 1), 30}};
  temp_dir dir;
  const std::string fifo = (dir.path() / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const bytes image = img.build();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const int fd = ::open(fifo.c_str(), O_WRONLY);
    const ssize_t w = ::write(fd, image.data(), image.size());
    ::_exit(w == static_cast<ssize_t>(image.size()) ? 0 : 1);
  }
  auto f = capture_file::open(fifo);
  EXPECT_EQ(drain(f).size(), 1u);
  int status = 0;
  ::waitpid(child, &status, 0);
}

// ---------------------------------------------------------------------------
// The shared corpus: counts and byte sums agree with capinfos

TEST(capture_file_corpus, matches_manifest_counts_and_bytes) {
  const fs::path dir = test_data::shared_pcaps();
  std::ifstream manifest(dir / "manifest.tsv");
  if (!manifest) GTEST_SKIP() << test_data::no_shared_data(dir / "manifest.tsv");
  std::string line;
  std::getline(manifest, line);
  std::vector<std::string> columns;
  {
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, '\t');) columns.push_back(c);
  }
  const auto col = [&](const char* name) {
    return static_cast<size_t>(std::find(columns.begin(), columns.end(), name) - columns.begin());
  };
  const size_t file_col = col("file"), packets_col = col("packets"), bytes_col = col("bytes");
  ASSERT_LT(bytes_col, columns.size());
  size_t files = 0;
  while (std::getline(manifest, line)) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, '\t');) f.push_back(c);
    ASSERT_GT(f.size(), bytes_col) << line;
    SCOPED_TRACE(f[file_col]);
    auto cap = capture_file::open((dir / f[file_col]).string());
    std::array<packet_view, 64> batch;
    uint64_t packets = 0, wire_bytes = 0;
    while (size_t n = cap.next_batch(batch)) {
      packets += n;
      for (size_t i = 0; i < n; ++i) wire_bytes += batch[i].wire_len;
    }
    EXPECT_FALSE(cap.truncated()) << cap.truncation_reason();
    EXPECT_EQ(packets, std::stoull(f[packets_col]));
    EXPECT_EQ(wire_bytes, std::stoull(f[bytes_col]));
    ++files;
  }
  EXPECT_GT(files, 50u);
}

}  // namespace
}  // namespace flower
