#include "capture/detail/xsk_queue.h"

#include <bpf/bpf.h>
#include <linux/if_xdp.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>

namespace flower::detail {
namespace {
[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err < 0 ? -err : err, std::generic_category(), what);
}
}  // namespace

std::unique_ptr<xsk_queue> xsk_queue::create(const xsk_queue_options& options) {
  std::unique_ptr<xsk_queue> q(new xsk_queue(options));
  q->init();
  return q;
}

void xsk_queue::init() {
  const uint32_t frames = options_.frames;
  if (frames == 0 || (frames & (frames - 1)) != 0)
    throw std::system_error(EINVAL, std::generic_category(), "--xdp-frames must be a power of two");
  area_ = mapped_region::anonymous(size_t{frames} * options_.frame_size);
  held_ = std::make_unique<uint64_t[]>(frames);

  xsk_umem_config ucfg{};
  ucfg.fill_size = frames;
  ucfg.comp_size = 64;
  ucfg.frame_size = options_.frame_size;
  ucfg.frame_headroom = 0;
  ucfg.flags = 0;
  if (int err = xsk_umem__create(&umem_, area_.data(), area_.size(), &fill_, &comp_, &ucfg))
    throw_errno(err, "create UMEM (" + std::to_string(area_.size() >> 10) + " KiB) for queue " +
                         std::to_string(options_.queue_id));

  xsk_socket_config scfg{};
  scfg.rx_size = frames;
  scfg.tx_size = 0;
  scfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
  scfg.xdp_flags = 0;
  scfg.bind_flags = static_cast<uint16_t>(XDP_USE_NEED_WAKEUP |
                                          (options_.zero_copy ? XDP_ZEROCOPY : XDP_COPY));
  if (int err = xsk_socket__create(&xsk_, options_.ifname.c_str(), options_.queue_id, umem_, &rx_,
                                   nullptr, &scfg)) {
    xsk_ = nullptr;
    throw_errno(err, "bind AF_XDP socket to " + options_.ifname + " queue " +
                         std::to_string(options_.queue_id) +
                         (options_.zero_copy ? " (zero-copy)" : " (copy)"));
  }

  // Every frame starts in the fill ring.
  uint32_t idx = 0;
  if (xsk_ring_prod__reserve(&fill_, frames, &idx) != frames)
    throw std::system_error(ENOSPC, std::generic_category(), "populate fill ring");
  for (uint32_t i = 0; i < frames; ++i)
    *xsk_ring_prod__fill_addr(&fill_, idx + i) = uint64_t{i} * options_.frame_size;
  xsk_ring_prod__submit(&fill_, frames);

  xdp_options xo{};
  socklen_t len = sizeof xo;
  if (getsockopt(fd(), SOL_XDP, XDP_OPTIONS, &xo, &len) == 0)
    zero_copy_ = (xo.flags & XDP_OPTIONS_ZEROCOPY) != 0;

  if (options_.busy_poll) {
    int one = 1, usecs = 20, budget = 64;
    busy_poll_ = setsockopt(fd(), SOL_SOCKET, SO_PREFER_BUSY_POLL, &one, sizeof one) == 0 &&
                 setsockopt(fd(), SOL_SOCKET, SO_BUSY_POLL, &usecs, sizeof usecs) == 0 &&
                 setsockopt(fd(), SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget, sizeof budget) == 0;
  }

  if (int err = xsk_socket__update_xskmap(xsk_, options_.xsks_map_fd))
    throw_errno(err, "insert socket into XSKMAP at queue " + std::to_string(options_.queue_id));
}

xsk_queue::~xsk_queue() {
  if (xsk_) xsk_socket__delete(xsk_);  // also removes it from the XSKMAP
  if (umem_) xsk_umem__delete(umem_);
  // area_ is unmapped by its own destructor, after this body.
}

int xsk_queue::fd() const noexcept { return xsk_socket__fd(xsk_); }

size_t xsk_queue::peek(std::span<packet_view> out, uint64_t ts_ns) noexcept {
  uint32_t idx = 0;
  const uint32_t want = static_cast<uint32_t>(out.size());
  const uint32_t n = xsk_ring_cons__peek(&rx_, want, &idx);
  const uint64_t frame_mask = ~uint64_t{options_.frame_size - 1};
  const uint32_t slot_mask = options_.frames - 1;
  for (uint32_t i = 0; i < n; ++i) {
    const xdp_desc* d = xsk_ring_cons__rx_desc(&rx_, idx + i);
    const uint64_t addr = xsk_umem__add_offset_to_addr(d->addr);
    held_[(held_head_ + held_count_ + i) & slot_mask] = addr & frame_mask;
    out[i] = packet_view{static_cast<const uint8_t*>(xsk_umem__get_data(area_.data(), addr)), d->len,
                         d->len, ts_ns, link_type::ethernet};
  }
  if (options_.metadata && n != 0) [[unlikely]]
    take_timestamps(out.first(n), ts_ns);
  held_count_ += n;
  rx_packets_ += n;
  return n;
}

// flower_xdp_hwts left a flower_xdp_meta right before each frame
// (capture/detail/xdp_meta.h has the rules).
void xsk_queue::take_timestamps(std::span<packet_view> views, uint64_t clock_ns) noexcept {
  auto* base = static_cast<uint8_t*>(area_.data());
  const uint64_t frame_mask = ~uint64_t{options_.frame_size - 1};
  for (packet_view& v : views) {
    const auto offset = static_cast<uint64_t>(v.data - base);
    v.ts_ns = xdp_meta_time(base + offset, offset - (offset & frame_mask), clock_ns, meta_);
  }
}

void xsk_queue::release(uint32_t n) noexcept {
  if (n > held_count_) n = held_count_;
  if (n == 0) return;
  xsk_ring_cons__release(&rx_, n);
  uint32_t idx = 0;
  // Cannot fail for long: frames in flight + frames in the fill ring <= ring size.
  while (xsk_ring_prod__reserve(&fill_, n, &idx) != n) kick_if_needed();
  const uint32_t slot_mask = options_.frames - 1;
  for (uint32_t i = 0; i < n; ++i) *xsk_ring_prod__fill_addr(&fill_, idx + i) = held_[(held_head_ + i) & slot_mask];
  xsk_ring_prod__submit(&fill_, n);
  held_head_ = (held_head_ + n) & slot_mask;
  held_count_ -= n;
  kick_if_needed();
}

void xsk_queue::kick_if_needed() noexcept {
  if (xsk_ring_prod__needs_wakeup(&fill_)) recvfrom(fd(), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
}

uint32_t xsk_queue::undelivered() const noexcept {
  // The kernel publishes descriptors by a release store of the producer;
  // cached_cons already counts what peek() took but has not released.
  return __atomic_load_n(rx_.producer, __ATOMIC_ACQUIRE) - rx_.cached_cons;
}

void xsk_queue::stop_intake() noexcept {
  const uint32_t key = options_.queue_id;
  bpf_map_delete_elem(options_.xsks_map_fd, &key);  // ENOENT if already gone: fine
}

xdp_socket_stats xsk_queue::stats() const noexcept {
  xdp_socket_stats s;
  s.queue_id = options_.queue_id;
  s.zero_copy = zero_copy_;
  s.rx_packets = rx_packets_;
  s.metadata_frames = meta_.frames;
  s.hw_timestamps = meta_.used;
  s.hw_timestamps_unsynced = meta_.unsynced;
  xdp_statistics st{};
  socklen_t len = sizeof st;
  if (getsockopt(fd(), SOL_XDP, XDP_STATISTICS, &st, &len) == 0) {
    s.rx_dropped = st.rx_dropped;
    s.rx_invalid_descs = st.rx_invalid_descs;
    s.rx_ring_full = st.rx_ring_full;
    s.fill_ring_empty_descs = st.rx_fill_ring_empty_descs;
  }
  return s;
}

}  // namespace flower::detail
