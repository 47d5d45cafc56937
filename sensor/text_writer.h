#pragma once
// text_writer: flow records as one human-readable line each, the sensor's
// default output (--json is the machine format).
//
//   TCP  10.0.0.1:51234 -> 93.184.216.34:443  vlan 0  pkts 12/10  bytes 1804/9620  1.234s  tcp_end

#include <cstdint>
#include <span>
#include <string>

#include "pipeline/flow_record.h"

namespace flower {

class text_writer final : public record_sink {
 public:
  explicit text_writer(int fd) : fd_(fd) {}
  ~text_writer() override { flush(); }
  void consume(std::span<const flow_record> records) override;
  void flush() noexcept;

  uint64_t records_written() const noexcept { return records_; }
  uint64_t write_errors() const noexcept { return write_errors_; }

 private:
  int fd_;
  std::string buffer_;
  uint64_t records_ = 0;
  uint64_t write_errors_ = 0;
};

std::string to_text(const flow_record& record);

}  // namespace flower
