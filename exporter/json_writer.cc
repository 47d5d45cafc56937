#include "exporter/json_writer.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "exporter/community_id.h"

namespace flower {
namespace {

constexpr size_t kBufferBytes = 1u << 20;
constexpr size_t kMaxRecordBytes = 1024;  // generous bound on one JSON object

// Appends into a raw buffer that the caller guarantees has room.
struct cursor {
  char* p;

  void lit(std::string_view s) noexcept {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
  void num(uint64_t v) noexcept { p = std::to_chars(p, p + 20, v).ptr; }

  void field(std::string_view key_with_quotes_and_colon, uint64_t v) noexcept {
    lit(key_with_quotes_and_colon);
    num(v);
  }

  void addr(const std::array<uint8_t, 16>& a, uint8_t version) noexcept {
    *p++ = '"';
    if (version == 4) {
      for (int i = 12; i < 16; ++i) {
        num(a[i]);
        if (i != 15) *p++ = '.';
      }
    } else {
      char text[INET6_ADDRSTRLEN];
      if (inet_ntop(AF_INET6, a.data(), text, sizeof text) != nullptr) lit(text);
    }
    *p++ = '"';
  }
};

}  // namespace

json_writer::json_writer(int fd, json_writer_options options)
    : fd_(fd), options_(options), buffer_(kBufferBytes) {}

json_writer::~json_writer() { flush(); }

void json_writer::consume(std::span<const flow_record> records) {
  for (const flow_record& r : records) {
    if (used_ + kMaxRecordBytes > buffer_.size()) flush();
    append(r);
  }
}

namespace {
// Formats one record at `out` (room for kMaxRecordBytes), without the
// newline, with "flow_id" last when given; returns the end.
char* format_record(const flow_record& r, const json_writer_options& options, const uint64_t* flow_id,
                    char* out) noexcept {
  cursor c{out};
  const flow_key& k = r.key;
  const bool icmp = k.proto == 1 || k.proto == 58;
  c.lit("{\"proto\":");
  c.num(k.proto);
  c.lit(",\"ip_version\":");
  c.num(k.ip_version);
  c.lit(",\"src_addr\":");
  c.addr(k.addr_a, k.ip_version);
  c.lit(",\"dst_addr\":");
  c.addr(k.addr_b, k.ip_version);
  // ICMP carries type and code in the destination port, as NetFlow v9 and
  // IPFIX exporters do (type << 8 | code).
  c.field(",\"src_port\":", icmp ? 0 : k.port_a);
  c.field(",\"dst_port\":", icmp ? r.icmp_type_code : k.port_b);
  c.field(",\"vlan\":", k.vlan);
  c.field(",\"packets\":", r.fwd.packets);
  c.field(",\"bytes\":", r.fwd.bytes);
  c.field(",\"frame_bytes\":", r.fwd.frame_bytes);
  c.field(",\"rev_packets\":", r.rev.packets);
  c.field(",\"rev_bytes\":", r.rev.bytes);
  c.field(",\"rev_frame_bytes\":", r.rev.frame_bytes);
  c.field(",\"tcp_flags\":", r.fwd.tcp_flags);
  c.field(",\"rev_tcp_flags\":", r.rev.tcp_flags);
  c.field(",\"first_ns\":", r.first_ns);
  c.field(",\"last_ns\":", r.last_ns);
  c.lit(",\"end_reason\":\"");
  c.lit(name_of(r.reason));
  c.lit("\"");
  c.field(",\"end_reason_code\":", static_cast<uint64_t>(r.reason));
  if (icmp) {
    c.field(",\"icmp_type\":", r.icmp_type_code >> 8);
    c.field(",\"icmp_code\":", r.icmp_type_code & 0xff);
  }
  if (k.proto == 50 || k.proto == 51) {
    c.field(",\"spi\":", r.fwd.spi);
    c.field(",\"rev_spi\":", r.rev.spi);
  }
  c.lit(",\"tunnel\":\"");
  c.lit(name_of(r.tunnel));
  c.lit("\"");
  if (options.community_id) {
    c.lit(",\"community_id\":\"");
    c.lit(community_id_of(r).view());
    c.lit("\"");
  }
  if (flow_id != nullptr) c.field(",\"flow_id\":", *flow_id);
  c.lit("}");
  return c.p;
}
}  // namespace

void json_writer::append(const flow_record& r) noexcept {
  char* end = format_record(r, options_, nullptr, buffer_.data() + used_);
  *end++ = '\n';
  used_ = static_cast<size_t>(end - buffer_.data());
  ++records_;
}

void json_writer::flush() noexcept {
  size_t off = 0;
  while (off < used_ && write_errors_ == 0) {
    ssize_t n = ::write(fd_, buffer_.data() + off, used_ - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      last_errno_ = errno;
      ++write_errors_;
      break;
    }
    off += static_cast<size_t>(n);
  }
  used_ = 0;
}

void append_json(std::string& out, const flow_record& record, const json_writer_options& options,
                 std::optional<uint64_t> flow_id) {
  const size_t at = out.size();
  out.resize(at + kMaxRecordBytes);
  char* end = format_record(record, options, flow_id ? &*flow_id : nullptr, out.data() + at);
  out.resize(static_cast<size_t>(end - out.data()));
}

std::string to_json(const flow_record& record, const json_writer_options& options) {
  std::string text;
  append_json(text, record, options);
  return text;
}

}  // namespace flower
