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
  uint64_t delivered = 0;
  std::string warning;

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
    self->batch_out[self->batch_n++] =
        packet_view{dst, static_cast<uint32_t>(len), h->len,
                    static_cast<uint64_t>(h->ts.tv_sec) * 1'000'000'000ull +
                        static_cast<uint64_t>(h->ts.tv_usec),  // nanosecond precision
                    link_type::ethernet};
    self->batch_out[self->batch_n - 1].link = self->link;
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
    return batch_n;
  }
};

pcap_live_source pcap_live_source::open(const pcap_live_config& config) {
  char err[PCAP_ERRBUF_SIZE] = {};
  auto p = std::make_unique<impl>();
  p->handle.reset(pcap_create(config.device.c_str(), err));
  if (!p->handle) throw capture_error(std::string("pcap_create ") + config.device + ": " + err);
  pcap_t* h = p->handle.get();
  pcap_set_snaplen(h, static_cast<int>(config.snaplen));
  pcap_set_promisc(h, config.promiscuous ? 1 : 0);
  pcap_set_buffer_size(h, static_cast<int>(config.buffer_bytes));
  pcap_set_immediate_mode(h, config.immediate ? 1 : 0);
  pcap_set_tstamp_precision(h, PCAP_TSTAMP_PRECISION_NANO);
  const int rc = pcap_activate(h);
  if (rc < 0) throw capture_error("pcap_activate " + config.device + ": " + pcap_geterr(h));
  if (rc > 0) p->warning = pcap_geterr(h);
  if (pcap_setdirection(h, PCAP_D_IN) != 0)
    p->warning += std::string(p->warning.empty() ? "" : "; ") + "cannot restrict to received frames";
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
  if (::poll(&pfd, 1, timeout_ms) <= 0) return 0;
  return impl_->take(out);
}

void pcap_live_source::release_batch() noexcept {}  // the arena is reused by the next batch

link_type pcap_live_source::link() const noexcept { return impl_->link; }

pcap_live_stats pcap_live_source::stats() const noexcept {
  pcap_live_stats s;
  pcap_stat ps{};
  if (pcap_stats(impl_->handle.get(), &ps) == 0) {
    s.ps_recv = ps.ps_recv;
    s.ps_drop = ps.ps_drop;
    s.ps_ifdrop = ps.ps_ifdrop;
  }
  s.delivered = impl_->delivered;
  return s;
}

const std::string& pcap_live_source::warning() const noexcept { return impl_->warning; }

}  // namespace flower
