#pragma once
// unique_fd / mapped_region: move-only owners of a file descriptor and an
// anonymous mmap, for the live capture front ends.

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <utility>

namespace flower::detail {

class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) { reset(); fd_ = std::exchange(o.fd_, -1); }
    return *this;
  }
  ~unique_fd() { reset(); }
  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  void reset() noexcept { if (fd_ >= 0) ::close(fd_); fd_ = -1; }

 private:
  int fd_ = -1;
};

// Page-aligned anonymous memory (the UMEM area). Throws std::system_error.
class mapped_region {
 public:
  // Whole multiples of 2 MiB start on a 2 MiB boundary and ask for
  // transparent huge pages: the frames of one batch lie 2 KiB apart, so on
  // 4 KiB pages nearly every frame the decoder reads would be a TLB miss.
  static mapped_region anonymous(size_t bytes) {
    constexpr size_t kHuge = size_t{2} << 20;
    const bool huge = bytes % kHuge == 0;
    const size_t span = huge ? bytes + kHuge : bytes;
    void* p = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap UMEM");
    auto* base = static_cast<char*>(p);
    if (huge) {
      const size_t head = (kHuge - reinterpret_cast<uintptr_t>(base) % kHuge) % kHuge;
      if (head != 0) ::munmap(base, head);
      ::munmap(base + head + bytes, span - head - bytes);  // the rest of the extra 2 MiB (never 0 bytes)
      base += head;
      (void)::madvise(base, bytes, MADV_HUGEPAGE);  // advisory; 4 KiB pages still work
    }
    return mapped_region(base, bytes);
  }
  mapped_region() = default;
  mapped_region(mapped_region&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  mapped_region& operator=(mapped_region&& o) noexcept {
    if (this != &o) {
      reset();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~mapped_region() { reset(); }
  void* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }

 private:
  mapped_region(void* p, size_t n) noexcept : data_(p), size_(n) {}
  void reset() noexcept { if (data_) ::munmap(data_, size_); data_ = nullptr; size_ = 0; }
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace flower::detail
