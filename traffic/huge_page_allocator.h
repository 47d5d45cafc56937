#pragma once
// huge_page_allocator: a std::allocator for the big in-memory packet arrays
// of benchmark traffic, placed on transparent 2 MiB pages.
//
//   std::vector<packet_view, huge_page_allocator<packet_view>> views(16'000'000);
//
// Why: benchmark traffic streams hundreds of MB of views per run. On the
// default 4 KiB pages (THP in "madvise" mode leaves plain malloc alone)
// every 128 views cost a TLB miss and restart the hardware prefetcher,
// which does not cross a page boundary; a NIC ring or a UMEM the sensor
// reads sits on huge pages (capture/detail/unique_fd.h). Arrays under
// 2 MiB come from the ordinary heap.

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <new>

namespace flower {

template <class T>
struct huge_page_allocator {
  using value_type = T;
  static constexpr size_t kHugePage = size_t{2} << 20;

  huge_page_allocator() noexcept = default;
  template <class U>
  huge_page_allocator(const huge_page_allocator<U>&) noexcept {}

  T* allocate(size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    const size_t bytes = n * sizeof(T);
    if (bytes < kHugePage) return static_cast<T*>(::operator new(bytes));
    const size_t rounded = (bytes + kHugePage - 1) & ~(kHugePage - 1);
    void* p = std::aligned_alloc(kHugePage, rounded);
    if (p == nullptr) throw std::bad_alloc();
    (void)madvise(p, rounded, MADV_HUGEPAGE);  // advisory; 4 KiB pages still work
    return static_cast<T*>(p);
  }

  void deallocate(T* p, size_t n) noexcept {
    if (n * sizeof(T) < kHugePage) {
      ::operator delete(p);
    } else {
      std::free(p);
    }
  }

  friend bool operator==(const huge_page_allocator&, const huge_page_allocator&) noexcept { return true; }
};

}  // namespace flower
