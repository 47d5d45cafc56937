#pragma once
// file_bytes: the whole content of a capture file as one read-only byte range.
//
//   file_bytes bytes = file_bytes::load("trace.pcap");  // throws capture_error
//   std::span<const uint8_t> all = bytes.view();
//
// A regular file is mapped read-only (madvise(MADV_SEQUENTIAL)); "-", pipes
// and other non-seekable paths are read to the end into an owned buffer. The
// bytes stay valid, at the same address, for the object's lifetime (moves
// keep the address). Private to capture/.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace flower::detail {

class file_bytes {
 public:
  // Throws capture_error: missing file (with strerror), a directory, read or
  // map failures. An empty file loads fine; the caller decides.
  static file_bytes load(const std::string& path);

  file_bytes() = default;
  file_bytes(file_bytes&& other) noexcept;
  file_bytes& operator=(file_bytes&& other) noexcept;
  file_bytes(const file_bytes&) = delete;
  file_bytes& operator=(const file_bytes&) = delete;
  ~file_bytes();

  std::span<const uint8_t> view() const noexcept { return {data_, size_}; }
  bool mapped() const noexcept { return mapped_; }

 private:
  void release() noexcept;

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;  // data_ is an mmap of size_ bytes, else malloc'd
};

}  // namespace flower::detail
