#pragma once
// json_writer: flow records as JSON Lines (one object per record), the
// sensor's --json output and the format flower-sub prints.
//
//   json_writer out(STDOUT_FILENO);
//   out.consume(records);   // a record_sink: buffered, one write() per ~1 MiB
//   out.flush();
//
// Field names and meanings are in docs/records.md. Formatting is done by hand
// with std::to_chars into a large buffer: the writer must keep up with the
// engine (millions of records per second), so no iostreams and no per-record
// allocation. A failed write (closed pipe, full disk) is counted and the
// writer stops writing; it never throws from consume().

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "pipeline/flow_record.h"

namespace flower {

struct json_writer_options {
  bool community_id = true;  // compute and print "community_id"
};

class json_writer final : public record_sink {
 public:
  explicit json_writer(int fd, json_writer_options options = {});
  ~json_writer() override;
  json_writer(const json_writer&) = delete;
  json_writer& operator=(const json_writer&) = delete;

  void consume(std::span<const flow_record> records) override;
  void flush() noexcept;

  uint64_t records_written() const noexcept { return records_; }
  uint64_t write_errors() const noexcept { return write_errors_; }
  int last_errno() const noexcept { return last_errno_; }

 private:
  void append(const flow_record& record) noexcept;

  int fd_;
  json_writer_options options_;
  std::vector<char> buffer_;
  size_t used_ = 0;
  uint64_t records_ = 0;
  uint64_t write_errors_ = 0;
  int last_errno_ = 0;
};

// One record as a JSON object (no trailing newline), for tests and tools.
std::string to_json(const flow_record& record, const json_writer_options& options = {});
// The same object appended to `out`, with "flow_id" as its last field when
// given (the feed's per-run flow id): for encoders that batch many records
// into one string (the reserve grows geometrically, so a batch allocates
// O(log n) times, not per record).
void append_json(std::string& out, const flow_record& record, const json_writer_options& options = {},
                 std::optional<uint64_t> flow_id = {});

}  // namespace flower
