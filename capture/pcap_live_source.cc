#include "capture/pcap_live_source.h"

#include <pcap/pcap.h>
#include <poll.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace flower {
namespace {

struct pcap_closer {
  void operator()(pcap_t* p) const noexcept { pcap_close(p); }
};
using pcap_handle = std::unique_ptr<pcap_t, pcap_closer>;

constexpr size_t kArenaBytes = 4u << 20;
// pcap_stats() is read at least this often (delivered frames), so its 32-bit
// counters cannot wrap unseen between two reads.
constexpr uint64_t kStatsEvery = 1u << 20;

// 64-bit sums of libpcap's 32-bit counters: each read adds the difference
// from the previous one, modulo 2^32.
struct wide_counter {
  uint64_t sum = 0;
  uint32_t last = 0;
  void update(uint32_t now) noexcept {
    sum += static_cast<uint32_t>(now - last);
    last = now;
  }
};

}  // namespace

struct pcap_live_source::impl {
  pcap_handle handle;
  link_type link = link_type::ethernet;
  int fd = -1;
  std::vector<std::vector<uint8_t>> arenas;  // copies of the last held_batches batches' frames
  size_t next_arena = 0;
  uint8_t* arena = nullptr;                  // this batch's
  size_t arena_bytes = 0;
  size_t snaplen = 262144;
  pcap_stamp_unit stamp_unit = pcap_stamp_unit::nanoseconds;
  uint32_t block_timeout_ms = 0;
  uint64_t delivered = 0;
  uint64_t delivered_at_stats = 0;
  std::string warning;
  wide_counter recv, drop, ifdrop;

  // One pcap_dispatch per batch (pcap_next_ex would cost a dispatch per
  // frame). The callback copies each frame into the arena.
  std::span<packet_view> batch_out;
  size_t batch_n = 0;
  size_t used = 0;

  static void on_frame(u_char* user, const pcap_pkthdr* h, const u_char* data) noexcept {
    auto* self = reinterpret_cast<impl*>(user);
    const size_t len = std::min<size_t>(h->caplen, self->snaplen);
    uint8_t* dst = self->arena + self->used;
    std::memcpy(dst, data, len);
    const uint64_t ts_ns = pcap_stamp_ns(static_cast<uint64_t>(h->ts.tv_sec),
                                         static_cast<uint64_t>(h->ts.tv_usec), self->stamp_unit);
    self->batch_out[self->batch_n++] = packet_view{dst, static_cast<uint32_t>(len), h->len, ts_ns, self->link};
    self->used += len;
    // Stop the dispatch while a maximal (snaplen) frame still fits.
    if (self->arena_bytes - self->used < self->snaplen) pcap_breakloop(self->handle.get());
  }

  size_t take(std::span<packet_view> out) noexcept {
    batch_out = out;
    batch_n = 0;
    used = 0;
    arena = arenas[next_arena].data();
    next_arena = (next_arena + 1) % arenas.size();
    // -2 (breakloop) still delivered batch_n frames; -1 is an error: nothing more to read.
    pcap_dispatch(handle.get(), static_cast<int>(out.size()), on_frame, reinterpret_cast<u_char*>(this));
    delivered += batch_n;
    if (batch_n == 0) next_arena = (next_arena + arenas.size() - 1) % arenas.size();  // unused: reuse it
    if (delivered - delivered_at_stats >= kStatsEvery) read_stats();
    return batch_n;
  }

  void read_stats() noexcept {
    pcap_stat ps{};
    if (pcap_stats(handle.get(), &ps) != 0) return;
    recv.update(ps.ps_recv);
    drop.update(ps.ps_drop);
    ifdrop.update(ps.ps_ifdrop);
    delivered_at_stats = delivered;
  }
};

pcap_live_source pcap_live_source::open(const pcap_live_config& config) {
  char err[PCAP_ERRBUF_SIZE] = {};
  auto p = std::make_unique<impl>();
  p->handle.reset(pcap_create(config.device.c_str(), err));
  if (!p->handle) throw capture_error(std::string("pcap_create ") + config.device + ": " + err);
  pcap_t* h = p->handle.get();
  auto note = [&](const std::string& w) { p->warning += (p->warning.empty() ? "" : "; ") + w; };
  pcap_set_snaplen(h, static_cast<int>(config.snaplen));
  pcap_set_promisc(h, config.promiscuous ? 1 : 0);
  pcap_set_buffer_size(h, static_cast<int>(config.buffer_bytes));
  pcap_set_immediate_mode(h, config.immediate ? 1 : 0);
  // 0 would mean "never" to libpcap (a V3 block then waits until it is full).
  pcap_set_timeout(h, static_cast<int>(std::max<uint32_t>(config.block_timeout_ms, 1)));
  const bool nano_refused = config.nanosecond_stamps &&
                            pcap_set_tstamp_precision(h, PCAP_TSTAMP_PRECISION_NANO) != 0;
  const int rc = pcap_activate(h);
  if (rc < 0) throw capture_error("pcap_activate " + config.device + ": " + pcap_geterr(h));
  if (rc > 0) note(pcap_geterr(h));
  // What is in force, not what was asked: libpcap may refuse nanoseconds.
  if (pcap_get_tstamp_precision(h) == PCAP_TSTAMP_PRECISION_NANO) {
    p->stamp_unit = pcap_stamp_unit::nanoseconds;
  } else {
    p->stamp_unit = pcap_stamp_unit::microseconds;
    if (nano_refused) note("nanosecond time stamps refused, using microseconds");
  }
  p->block_timeout_ms = config.immediate ? 0 : std::max<uint32_t>(config.block_timeout_ms, 1);
  if (pcap_setdirection(h, PCAP_D_IN) != 0) note("cannot restrict to received frames");
  if (!config.filter.empty()) {
    bpf_program prog{};
    if (pcap_compile(h, &prog, config.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
      throw capture_error("bad filter '" + config.filter + "': " + pcap_geterr(h));
    const int set = pcap_setfilter(h, &prog);
    pcap_freecode(&prog);
    if (set != 0) throw capture_error(std::string("pcap_setfilter: ") + pcap_geterr(h));
  }
  if (pcap_setnonblock(h, 1, err) != 0) throw capture_error(std::string("pcap_setnonblock: ") + err);
  p->fd = pcap_get_selectable_fd(h);
  // libpcap reports DLT values; they equal the LINKTYPE values the decoder
  // speaks except raw IP, whose DLT (12, or 14 on some BSDs) is LINKTYPE 101.
  const int dlt = pcap_datalink(h);
  p->link = (dlt == DLT_RAW || dlt == 14) ? link_type::raw : static_cast<link_type>(dlt);
  p->snaplen = config.snaplen;
  // One arena holds a batch; rotated ones are smaller (several are live at once).
  const size_t per_arena = config.held_batches > 1 ? kArenaBytes / 4 : kArenaBytes;
  p->arena_bytes = std::max<size_t>(per_arena, 2 * size_t{config.snaplen});
  p->arenas.resize(std::max<uint32_t>(1, config.held_batches));
  for (auto& a : p->arenas) a.resize(p->arena_bytes);
  return pcap_live_source(std::move(p));
}

pcap_live_source::pcap_live_source(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
pcap_live_source::pcap_live_source(pcap_live_source&&) noexcept = default;
pcap_live_source& pcap_live_source::operator=(pcap_live_source&&) noexcept = default;
pcap_live_source::~pcap_live_source() = default;

size_t pcap_live_source::next_batch(std::span<packet_view> out, int timeout_ms) noexcept {
  if (size_t n = impl_->take(out)) return n;
  if (timeout_ms <= 0 || impl_->fd < 0) return 0;
  pollfd pfd{impl_->fd, POLLIN, 0};
  if (::poll(&pfd, 1, timeout_ms) <= 0) {
    impl_->read_stats();  // idle: keep the 32-bit counters from wrapping unseen
    return 0;
  }
  return impl_->take(out);
}

void pcap_live_source::release_batch() noexcept {}  // the arena is reused by the next batch

link_type pcap_live_source::link() const noexcept { return impl_->link; }

pcap_live_stats pcap_live_source::stats() const noexcept {
  impl_->read_stats();
  pcap_live_stats s;
  s.ps_recv = impl_->recv.sum;
  s.ps_drop = impl_->drop.sum;
  s.ps_ifdrop = impl_->ifdrop.sum;
  s.delivered = impl_->delivered;
  return s;
}

uint64_t pcap_live_source::undelivered() const noexcept {
  const pcap_live_stats s = stats();
  const uint64_t accepted = s.ps_recv - std::min(s.ps_drop, s.ps_recv);
  return accepted - std::min(accepted, s.delivered);
}

const std::string& pcap_live_source::warning() const noexcept { return impl_->warning; }
pcap_stamp_unit pcap_live_source::stamp_unit() const noexcept { return impl_->stamp_unit; }
uint32_t pcap_live_source::block_timeout_ms() const noexcept { return impl_->block_timeout_ms; }

}  // namespace flower
