#pragma once
// record_buffer: batches expired flow records on their way to a record_sink,
// so the sink (the JSON or text writer, or the multi-core engine's record
// merger) is called once per `capacity` records instead of once per record.
//
//   record_buffer out(sink);
//   table.update(batch, out);   // pushes whatever expired
//   out.flush();                // at the end of the batch

#include <cstddef>
#include <memory>

#include "pipeline/flow_record.h"

namespace flower {

class record_buffer {
 public:
  explicit record_buffer(record_sink& sink, size_t capacity = 1024)
      : sink_(&sink), records_(new flow_record[capacity]), capacity_(capacity) {}

  void push(const flow_record& record) noexcept {
    records_[size_++] = record;
    ++pushed_;
    if (size_ == capacity_) flush();
  }

  void flush() noexcept {
    if (size_ == 0) return;
    sink_->consume({records_.get(), size_});
    size_ = 0;
  }

  size_t pushed() const noexcept { return pushed_; }

 private:
  record_sink* sink_;
  std::unique_ptr<flow_record[]> records_;
  size_t capacity_;
  size_t size_ = 0;
  size_t pushed_ = 0;
};

}  // namespace flower
