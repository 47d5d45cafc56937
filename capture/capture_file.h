#pragma once
// capture_file: zero-copy reader for pcap and pcapng files.
//
//   capture_file file = capture_file::open("trace.pcapng");   // throws capture_error
//   std::array<packet_view, 256> batch;
//   while (size_t n = file.next_batch(batch)) engine.process({batch.data(), n}, out);
//   if (file.truncated()) ...                                 // file ended mid-record
//
// The format is detected from the magic number, never from the file name:
// pcap (microsecond or nanosecond, either byte order) and pcapng (any number
// of sections and interfaces, each with its own link type and timestamp
// resolution; EPB, SPB and the obsolete PB). The file is mapped read-only;
// views point into the mapping and stay valid for the reader's lifetime.
// "-" reads standard input into memory first.
//
// A record whose lengths contradict the file (caplen beyond the end, caplen
// larger than the snaplen allows by far) ends reading and sets truncated():
// everything before it is delivered, nothing is invented.
//
// Details a caller may rely on:
//  - Timestamps are nanoseconds since the epoch. pcapng honours if_tsresol
//    (power of 10 or of 2) and if_tsoffset per interface; pcap's thiszone
//    is ignored (always 0 in practice).
//  - A record whose time is not a time is skipped and counted in
//    counters().bad_timestamp, and reading goes on: a pcap fraction of
//    1e6 us / 1e9 ns or more, or a pcapng time (ticks x resolution +
//    offset) before the epoch or at 2^62 ns (year 2116) or later, which
//    would overflow the engine's `last_ns + timeout`. A later SPB takes
//    the previous good time.
//  - packet_view::link is the LINKTYPE value as written (the low 16 bits of
//    the pcap header field; its upper FCS bits are dropped); unknown values
//    pass through for the decoder to count.
//  - caplen > wire_len in a pcap record is delivered as is. A caplen above
//    both 256 KiB and the file's snaplen is corruption and stops reading.
//  - pcapng SPB: interface 0 of the section; caplen = min(original length,
//    snaplen, room in the block); ts_ns = the timestamp of the previous
//    packet in the file (SPBs carry none), 0 if none came before.
//  - Damage found after open() (a later section with a bad byte-order magic
//    or major version, a block length that overruns the file, is not a
//    multiple of 4 or is below its type's fixed part, a trailing length
//    that differs, an EPB caplen beyond its block) ends reading the same way;
//    truncation_reason() says "record N at offset X: ..." (pcap, N counts
//    records from 1) or "block N at offset X: ..." (pcapng, N counts blocks).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "pipeline/packet.h"

namespace flower {

class capture_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class capture_format : uint8_t { pcap_us, pcap_ns, pcapng };

struct capture_file_counters {
  uint64_t records = 0;           // packet records delivered
  uint64_t skipped_blocks = 0;    // pcapng blocks that carry no packet (NRB, ISB, custom, ...)
  uint64_t bad_interface = 0;     // pcapng packets naming an undeclared interface (skipped)
  uint64_t bad_timestamp = 0;     // records whose time is no time (skipped; see below)
};

class capture_file {
 public:
  // Opens and validates the header. Throws capture_error with a one-line
  // reason ("not a pcap or pcapng file", "empty file", "unsupported link
  // type 147", ...). Unknown link types are not an error here: the decoder
  // counts them per packet.
  static capture_file open(const std::string& path);

  capture_file(capture_file&&) noexcept;
  capture_file& operator=(capture_file&&) noexcept;
  ~capture_file();

  // Fill `out` with up to out.size() packets; returns how many, 0 at the end.
  size_t next_batch(std::span<packet_view> out) noexcept;

  capture_format format() const noexcept;
  link_type first_link_type() const noexcept;  // of the first interface
  bool truncated() const noexcept;             // the last record was cut short
  const std::string& truncation_reason() const noexcept;
  const capture_file_counters& counters() const noexcept;

 private:
  struct impl;
  explicit capture_file(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace flower
