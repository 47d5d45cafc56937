#include "capture/capture_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "capture/detail/file_bytes.h"

namespace flower {

// ---------------------------------------------------------------------------
// file_bytes

namespace detail {
namespace {

[[noreturn]] void fail_errno(const std::string& path, const char* what, int err) {
  throw capture_error(path + ": " + what + ": " + std::strerror(err));
}

struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads fd to its end into a malloc'd buffer (for stdin and pipes).
std::pair<uint8_t*, size_t> slurp(int fd, const std::string& path) {
  size_t cap = size_t{1} << 20, size = 0;
  auto* buf = static_cast<uint8_t*>(std::malloc(cap));
  if (!buf) throw capture_error(path + ": out of memory");
  for (;;) {
    if (size == cap) {
      cap *= 2;
      auto* grown = static_cast<uint8_t*>(std::realloc(buf, cap));
      if (!grown) {
        std::free(buf);
        throw capture_error(path + ": out of memory reading the whole input");
      }
      buf = grown;
    }
    ssize_t got = ::read(fd, buf + size, cap - size);
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      std::free(buf);
      fail_errno(path, "read", err);
    }
    size += static_cast<size_t>(got);
  }
  return {buf, size};
}

}  // namespace

file_bytes file_bytes::load(const std::string& path) {
  file_bytes out;
  if (path == "-") {
    auto [buf, size] = slurp(STDIN_FILENO, "stdin");
    out.data_ = buf;
    out.size_ = size;
    return out;
  }
  fd_guard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) fail_errno(path, "cannot open", errno);
  struct stat st {};
  if (::fstat(fd.fd, &st) != 0) fail_errno(path, "cannot stat", errno);
  if (S_ISDIR(st.st_mode)) throw capture_error(path + ": is a directory, not a capture file");
  if (!S_ISREG(st.st_mode)) {  // FIFO, character device, process substitution
    auto [buf, size] = slurp(fd.fd, path);
    out.data_ = buf;
    out.size_ = size;
    return out;
  }
  if (st.st_size == 0) return out;
  const auto size = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.fd, 0);
  if (map == MAP_FAILED) fail_errno(path, "cannot map", errno);
  ::madvise(map, size, MADV_SEQUENTIAL);  // advisory: a failure changes nothing
  out.data_ = static_cast<const uint8_t*>(map);
  out.size_ = size;
  out.mapped_ = true;
  return out;
}

file_bytes::file_bytes(file_bytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, false)) {}

file_bytes& file_bytes::operator=(file_bytes&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, false);
  }
  return *this;
}

file_bytes::~file_bytes() { release(); }

void file_bytes::release() noexcept {
  if (!data_) return;
  if (mapped_)
    ::munmap(const_cast<uint8_t*>(data_), size_);
  else
    std::free(const_cast<uint8_t*>(data_));
  data_ = nullptr;
  size_ = 0;
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Formats

namespace {

constexpr uint32_t pcap_magic_us = 0xa1b2c3d4;
constexpr uint32_t pcap_magic_ns = 0xa1b23c4d;
constexpr uint32_t pcapng_shb_type = 0x0a0d0d0a;
constexpr uint32_t pcapng_byte_order_magic = 0x1a2b3c4d;

constexpr size_t pcap_file_header_bytes = 24;
constexpr size_t pcap_record_header_bytes = 16;
constexpr size_t pcapng_block_overhead = 12;  // type, length, trailing length
constexpr size_t pcapng_shb_min_bytes = 28;

// A per-record caplen above both this and the snaplen is taken as corruption.
constexpr uint32_t absurd_caplen = 256 * 1024;

enum pcapng_block : uint32_t {
  idb = 1,
  obsolete_pb = 2,
  spb = 3,
  epb = 6,
};

constexpr uint16_t opt_end = 0;
constexpr uint16_t opt_if_tsresol = 9;
constexpr uint16_t opt_if_tsoffset = 14;

inline uint32_t load32(const uint8_t* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint16_t load16(const uint8_t* p) noexcept {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

template <bool Swap>
inline uint32_t get32(const uint8_t* p) noexcept {
  if constexpr (Swap) return __builtin_bswap32(load32(p));
  return load32(p);
}

inline uint32_t get32(const uint8_t* p, bool swap) noexcept {
  return swap ? __builtin_bswap32(load32(p)) : load32(p);
}
inline uint16_t get16(const uint8_t* p, bool swap) noexcept {
  return swap ? __builtin_bswap16(load16(p)) : load16(p);
}
inline uint64_t get64(const uint8_t* p, bool swap) noexcept {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return swap ? __builtin_bswap64(v) : v;
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// Converts pcapng interface ticks to nanoseconds, chosen once per IDB.
__extension__ typedef unsigned __int128 u128;
__extension__ typedef __int128 i128;

// A packet time the engine can use: below 2^62 ns (year 2116), so adding a
// timeout to it cannot overflow (flow_table keeps its offsets below 2^62).
constexpr uint64_t kMaxTimestampNs = uint64_t{1} << 62;

struct tick_clock {
  enum class mode : uint8_t { multiply, divide, shift } how = mode::multiply;
  uint64_t factor = 1000;  // multiply / divide factor, or shift count
  i128 offset_ns = 0;  // if_tsoffset in nanoseconds (any int64 seconds fits)

  static tick_clock from_tsresol(uint8_t resol) noexcept {
    tick_clock c;
    const uint8_t exp = resol & 0x7f;
    if (resol & 0x80) {  // 2^-exp seconds
      c.how = mode::shift;
      c.factor = exp;
    } else if (exp <= 9) {
      c.how = mode::multiply;
      c.factor = 1;
      for (int i = exp; i < 9; ++i) c.factor *= 10;
    } else {
      c.how = mode::divide;
      c.factor = 1;
      for (int i = 9; i < std::min<int>(exp, 28); ++i)
        c.factor = c.factor > UINT64_MAX / 10 ? UINT64_MAX : c.factor * 10;
    }
    return c;
  }

  // Ticks plus the interface offset in nanoseconds, computed without
  // wrapping; false when that is before the epoch or at/after 2^62 ns.
  bool to_ns(uint64_t ticks, uint64_t& ns) const noexcept {
    u128 t;
    switch (how) {
      case mode::multiply: t = u128{ticks} * factor; break;  // < 2^94
      case mode::divide: t = ticks / factor; break;
      default: t = factor >= 128 ? 0 : (u128{ticks} * 1000000000u) >> factor; break;
    }
    const i128 v = static_cast<i128>(t) + offset_ns;
    if (v < 0 || v >= static_cast<i128>(kMaxTimestampNs)) return false;
    ns = static_cast<uint64_t>(v);
    return true;
  }
};

struct interface_info {
  link_type link = link_type::ethernet;
  uint32_t snaplen = 0;  // 0 = unlimited
  tick_clock clock;
};

}  // namespace

// ---------------------------------------------------------------------------
// Reader state

struct capture_file::impl {
  detail::file_bytes bytes;
  const uint8_t* begin = nullptr;
  const uint8_t* cur = nullptr;
  const uint8_t* end = nullptr;
  capture_format format = capture_format::pcap_us;
  bool swap = false;  // pcap: whole file; pcapng: current section
  bool done = false;  // reading stopped (end, truncation or corruption)
  bool truncated = false;
  link_type first_link = link_type::ethernet;
  uint32_t caplen_limit = absurd_caplen;  // pcap: max(absurd_caplen, snaplen)
  uint64_t record_index = 0;              // pcap records / pcapng blocks read so far
  uint64_t last_ts_ns = 0;                // for SPB, which carries no timestamp
  std::vector<interface_info> interfaces;  // current pcapng section
  std::string truncation_reason;
  capture_file_counters counters;

  size_t offset() const noexcept { return static_cast<size_t>(cur - begin); }

  // Stops reading; the reason is built on the slow path only.
  [[gnu::cold, gnu::noinline]] void stop(const char* unit, const std::string& why) noexcept {
    done = true;
    truncated = true;
    try {
      truncation_reason = std::string(unit) + " " + std::to_string(record_index + 1) + " at offset " +
                          std::to_string(offset()) + ": " + why;
    } catch (...) {
      // Out of memory while describing the problem: keep the flag, drop the text.
    }
  }

  template <bool Swap, bool Nano>
  size_t read_pcap(std::span<packet_view> out) noexcept;
  size_t read_pcapng(std::span<packet_view> out) noexcept;

  // pcapng helpers; each returns false after stop().
  bool begin_section(size_t block_len) noexcept;
  bool add_interface(const uint8_t* body, size_t body_len) noexcept;
};

// Classic pcap: a few loads, two compares and adds per record.
template <bool Swap, bool Nano>
size_t capture_file::impl::read_pcap(std::span<packet_view> out) noexcept {
  const uint8_t* p = cur;
  const uint8_t* const stop_at = end;
  const link_type link = first_link;
  const uint32_t limit = caplen_limit;
  // A fraction field worth a whole second or more is no time: the record
  // is skipped and counted. The seconds are 32 bits, so every valid time
  // stays below 2^62 ns.
  constexpr uint64_t frac_limit = Nano ? 1000000000u : 1000000u;
  static_assert(uint64_t{UINT32_MAX} * 1000000000u + 999999999u < kMaxTimestampNs);
  size_t n = 0;
  uint64_t skipped = 0;
  while (n < out.size()) {
    const size_t room = static_cast<size_t>(stop_at - p);
    if (room < pcap_record_header_bytes) break;
    const uint32_t caplen = get32<Swap>(p + 8);
    if (caplen > room - pcap_record_header_bytes || caplen > limit) break;
    const uint64_t sec = get32<Swap>(p);
    const uint64_t frac = get32<Swap>(p + 4);
    if (frac >= frac_limit) [[unlikely]] {
      ++skipped;
      p += pcap_record_header_bytes + caplen;
      continue;
    }
    packet_view& v = out[n++];
    v.data = p + pcap_record_header_bytes;
    v.caplen = caplen;
    v.wire_len = get32<Swap>(p + 12);
    v.ts_ns = sec * 1000000000u + (Nano ? frac : frac * 1000u);
    v.link = link;
    p += pcap_record_header_bytes + caplen;
  }
  cur = p;
  record_index += n + skipped;
  counters.records += n;
  counters.bad_timestamp += skipped;
  if (n < out.size()) {  // why did we stop?
    const size_t room = static_cast<size_t>(stop_at - p);
    if (room == 0) {
      done = true;
    } else if (room < pcap_record_header_bytes) {
      stop("record", "header needs 16 bytes, only " + std::to_string(room) + " left in the file");
    } else {
      const uint32_t caplen = get32<Swap>(p + 8);
      if (caplen > limit)
        stop("record", "caplen " + std::to_string(caplen) + " is larger than any sane snaplen (file snaplen " +
                           std::to_string(limit == absurd_caplen ? 0 : limit) + "); file is corrupt");
      else
        stop("record", "caplen " + std::to_string(caplen) + " runs past the end of the file");
    }
  }
  return n;
}

bool capture_file::impl::begin_section(size_t room) noexcept {
  // The byte order of a section is known only from its byte-order magic.
  if (room < pcapng_shb_min_bytes) {
    stop("block", "section header block needs 28 bytes, only " + std::to_string(room) + " left in the file");
    return false;
  }
  const uint32_t bom = load32(cur + 8);
  if (bom == pcapng_byte_order_magic) {
    swap = false;
  } else if (bom == __builtin_bswap32(pcapng_byte_order_magic)) {
    swap = true;
  } else {
    stop("block", "section header block has a bad byte-order magic " + hex32(bom));
    return false;
  }
  const uint16_t major = get16(cur + 12, swap);
  if (major != 1) {
    stop("block", "section header block has unsupported pcapng major version " + std::to_string(major));
    return false;
  }
  interfaces.clear();
  return true;
}

bool capture_file::impl::add_interface(const uint8_t* body, size_t body_len) noexcept {
  interface_info info;
  info.link = static_cast<link_type>(get16(body, swap));
  info.snaplen = get32(body + 4, swap);
  info.clock = tick_clock::from_tsresol(6);
  int64_t offset_s = 0;
  // Options: code, length, value padded to 4 bytes; stop at opt_endofopt or
  // at anything that does not fit (a bad option list loses options, not packets).
  size_t at = 8;
  while (at + 4 <= body_len) {
    const uint16_t code = get16(body + at, swap);
    const uint16_t len = get16(body + at + 2, swap);
    at += 4;
    if (code == opt_end || at + len > body_len) break;
    if (code == opt_if_tsresol && len >= 1) info.clock = tick_clock::from_tsresol(body[at]);
    if (code == opt_if_tsoffset && len >= 8) offset_s = static_cast<int64_t>(get64(body + at, swap));
    at += (len + 3u) & ~size_t{3};
  }
  info.clock.offset_ns = static_cast<i128>(offset_s) * 1000000000;
  try {
    interfaces.push_back(info);
  } catch (...) {
    stop("block", "out of memory for interface descriptions");
    return false;
  }
  return true;
}

// pcapng: one branch on the block type per block; packet blocks go straight
// into the batch.
size_t capture_file::impl::read_pcapng(std::span<packet_view> out) noexcept {
  size_t n = 0;
  while (n < out.size()) {
    const size_t room = static_cast<size_t>(end - cur);
    if (room == 0) {
      done = true;
      break;
    }
    if (room < pcapng_block_overhead) {
      stop("block", "block header needs 12 bytes, only " + std::to_string(room) + " left in the file");
      break;
    }
    const uint32_t type = load32(cur);  // the SHB type reads the same in both orders
    if (type == pcapng_shb_type && !begin_section(room)) break;
    const uint32_t len = get32(cur + 4, swap);
    const uint32_t type_here = get32(cur, swap);
    size_t fixed = pcapng_block_overhead;
    switch (type_here) {
      case pcapng_shb_type: fixed = pcapng_shb_min_bytes; break;
      case idb: fixed = 20; break;
      case epb: fixed = 32; break;
      case obsolete_pb: fixed = 32; break;
      case spb: fixed = 16; break;
      default: break;
    }
    if (len % 4 != 0) {
      stop("block", "block length " + std::to_string(len) + " is not a multiple of 4");
      break;
    }
    if (len < fixed) {
      stop("block", "block length " + std::to_string(len) + " is smaller than the " + std::to_string(fixed) +
                        " bytes its type needs");
      break;
    }
    if (len > room) {
      stop("block", "block length " + std::to_string(len) + " runs past the end of the file");
      break;
    }
    if (get32(cur + len - 4, swap) != len) {
      stop("block", "trailing block length " + std::to_string(get32(cur + len - 4, swap)) +
                        " differs from the leading " + std::to_string(len));
      break;
    }
    const uint8_t* body = cur + 8;
    const size_t body_len = len - pcapng_block_overhead;
    bool packet = false;
    uint32_t if_id = 0, caplen = 0, wire_len = 0;
    uint64_t ticks = 0;
    const uint8_t* data = nullptr;
    size_t data_room = 0;
    switch (type_here) {
      case pcapng_shb_type: break;
      case idb:
        if (!add_interface(body, body_len)) return n;
        break;
      case epb:
        if_id = get32(body, swap);
        ticks = (uint64_t{get32(body + 4, swap)} << 32) | get32(body + 8, swap);
        caplen = get32(body + 12, swap);
        wire_len = get32(body + 16, swap);
        data = body + 20;
        data_room = body_len - 20;
        packet = true;
        break;
      case obsolete_pb:
        if_id = get16(body, swap);
        ticks = (uint64_t{get32(body + 4, swap)} << 32) | get32(body + 8, swap);
        caplen = get32(body + 12, swap);
        wire_len = get32(body + 16, swap);
        data = body + 20;
        data_room = body_len - 20;
        packet = true;
        break;
      case spb: {
        wire_len = get32(body, swap);
        data = body + 4;
        data_room = body_len - 4;
        if (interfaces.empty()) {
          ++counters.bad_interface;
          break;
        }
        uint64_t cap = std::min<uint64_t>(wire_len, data_room);
        if (interfaces[0].snaplen != 0) cap = std::min<uint64_t>(cap, interfaces[0].snaplen);
        out[n++] = packet_view{data, static_cast<uint32_t>(cap), wire_len, last_ts_ns, interfaces[0].link};
        ++counters.records;
        break;
      }
      default:
        ++counters.skipped_blocks;
        break;
    }
    if (packet) {
      if (caplen > data_room) {
        stop("block", "caplen " + std::to_string(caplen) + " runs past the end of its block (room " +
                          std::to_string(data_room) + ")");
        break;
      }
      uint64_t ts_ns;
      if (if_id >= interfaces.size()) {
        ++counters.bad_interface;
      } else if (!interfaces[if_id].clock.to_ns(ticks, ts_ns)) {
        ++counters.bad_timestamp;
      } else {
        last_ts_ns = ts_ns;
        out[n++] = packet_view{data, caplen, wire_len, last_ts_ns, interfaces[if_id].link};
        ++counters.records;
      }
    }
    cur += len;
    ++record_index;
  }
  return n;
}

// ---------------------------------------------------------------------------
// capture_file

capture_file capture_file::open(const std::string& path) {
  auto s = std::make_unique<impl>();
  s->bytes = detail::file_bytes::load(path);
  const auto all = s->bytes.view();
  const std::string name = path == "-" ? std::string("stdin") : path;
  if (all.empty()) throw capture_error(name + ": empty file");
  if (all.size() < 4)
    throw capture_error(name + ": too short for a capture file header (" + std::to_string(all.size()) + " bytes)");
  s->begin = s->cur = all.data();
  s->end = all.data() + all.size();

  const uint32_t magic = load32(all.data());
  if (magic == pcap_magic_us || magic == pcap_magic_ns || magic == __builtin_bswap32(pcap_magic_us) ||
      magic == __builtin_bswap32(pcap_magic_ns)) {
    s->swap = magic == __builtin_bswap32(pcap_magic_us) || magic == __builtin_bswap32(pcap_magic_ns);
    const bool nano = magic == pcap_magic_ns || magic == __builtin_bswap32(pcap_magic_ns);
    s->format = nano ? capture_format::pcap_ns : capture_format::pcap_us;
    if (all.size() < pcap_file_header_bytes)
      throw capture_error(name + ": too short for a pcap file header (" + std::to_string(all.size()) +
                          " bytes, need 24)");
    const uint16_t major = get16(all.data() + 4, s->swap);
    if (major != 2) throw capture_error(name + ": unsupported pcap major version " + std::to_string(major));
    const uint32_t snaplen = get32(all.data() + 16, s->swap);
    // The upper bits of the link-type field carry FCS information.
    s->first_link = static_cast<link_type>(get32(all.data() + 20, s->swap) & 0xffff);
    s->caplen_limit = std::max(snaplen, absurd_caplen);
    s->cur += pcap_file_header_bytes;
  } else if (magic == pcapng_shb_type) {
    s->format = capture_format::pcapng;
    if (all.size() < pcapng_shb_min_bytes)
      throw capture_error(name + ": too short for a pcapng section header (" + std::to_string(all.size()) +
                          " bytes, need 28)");
    const uint32_t bom = load32(all.data() + 8);
    if (bom != pcapng_byte_order_magic && bom != __builtin_bswap32(pcapng_byte_order_magic))
      throw capture_error(name + ": pcapng section header has a bad byte-order magic " + hex32(bom));
    const bool swap = bom != pcapng_byte_order_magic;
    const uint16_t major = get16(all.data() + 12, swap);
    if (major != 1) throw capture_error(name + ": unsupported pcapng major version " + std::to_string(major));
    // Report the first interface's link type up front: scan the first
    // section's leading blocks without delivering anything.
    const uint8_t* p = all.data();
    while (static_cast<size_t>(s->end - p) >= pcapng_block_overhead) {
      const uint32_t type = get32(p, swap), len = get32(p + 4, swap);
      if (len < pcapng_block_overhead || len % 4 || len > static_cast<size_t>(s->end - p)) break;
      if (type == idb && len >= 20) {
        s->first_link = static_cast<link_type>(get16(p + 8, swap));
        break;
      }
      if (type == epb || type == spb || type == obsolete_pb || (p != all.data() && type == pcapng_shb_type)) break;
      p += len;
    }
  } else {
    const uint8_t* b = all.data();
    const uint32_t first_four = uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
    throw capture_error(name + ": not a pcap or pcapng file (magic " + hex32(first_four) + ")");
  }
  return capture_file(std::move(s));
}

capture_file::capture_file(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
capture_file::capture_file(capture_file&&) noexcept = default;
capture_file& capture_file::operator=(capture_file&&) noexcept = default;
capture_file::~capture_file() = default;

size_t capture_file::next_batch(std::span<packet_view> out) noexcept {
  impl& s = *impl_;
  if (s.done || out.empty()) return 0;
  switch (s.format) {
    case capture_format::pcap_us:
      return s.swap ? s.read_pcap<true, false>(out) : s.read_pcap<false, false>(out);
    case capture_format::pcap_ns:
      return s.swap ? s.read_pcap<true, true>(out) : s.read_pcap<false, true>(out);
    case capture_format::pcapng:
      return s.read_pcapng(out);
  }
  return 0;
}

capture_format capture_file::format() const noexcept { return impl_->format; }
link_type capture_file::first_link_type() const noexcept { return impl_->first_link; }
bool capture_file::truncated() const noexcept { return impl_->truncated; }
const std::string& capture_file::truncation_reason() const noexcept { return impl_->truncation_reason; }
const capture_file_counters& capture_file::counters() const noexcept { return impl_->counters; }

}  // namespace flower
