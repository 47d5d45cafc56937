#include "capture/xdp_source.h"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <thread>

#include "capture/detail/unique_fd.h"
#include "capture/detail/xdp_program.h"
#include "capture/detail/xsk_queue.h"
#include "capture/live_source.h"

namespace flower {
namespace {

// Re-binding a queue within ~1 s of the previous socket closing fails with
// EBUSY (docs/live-capture.md): retry with a doubling backoff, ~3 s in all.
std::unique_ptr<detail::xsk_queue> create_with_retry(const detail::xsk_queue_options& o) {
  auto delay = std::chrono::milliseconds(50);
  for (int attempt = 0;; ++attempt) {
    try {
      return detail::xsk_queue::create(o);
    } catch (const std::system_error& e) {
      if (e.code().value() != EBUSY || attempt >= 6) throw;
      std::this_thread::sleep_for(delay);
      delay *= 2;
    }
  }
}

}  // namespace

struct xdp_source::impl {
  // Construction order: program, then sockets (each owning its UMEM).
  // Destruction runs the other way.
  detail::xdp_program_attachment program;
  std::vector<std::unique_ptr<detail::xsk_queue>> queues;
  std::vector<pollfd> fds;
  xdp_source_info info;
  size_t next_queue = 0;

  size_t take(std::span<packet_view> out) noexcept {
    const uint64_t ts = realtime_ns();  // one clock read per batch
    size_t total = 0;
    const size_t nq = queues.size();
    for (size_t k = 0; k < nq && total < out.size(); ++k)
      total += queues[(next_queue + k) % nq]->peek(out.subspan(total), ts);
    next_queue = (next_queue + 1) % nq;
    return total;
  }
};

xdp_source xdp_source::open(const xdp_source_config& config) {
  const unsigned ifindex = if_nametoindex(config.device.c_str());
  if (ifindex == 0) throw std::system_error(errno, std::generic_category(), "no such device " + config.device);

  auto p = std::make_unique<impl>();
  // UMEM pages are locked: raise RLIMIT_MEMLOCK if we may (CAP_SYS_RESOURCE);
  // with CAP_IPC_LOCK the limit does not apply anyway.
  rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
  if (setrlimit(RLIMIT_MEMLOCK, &unlimited) != 0) {
    rlimit cur{};
    getrlimit(RLIMIT_MEMLOCK, &cur);
    const uint64_t need = uint64_t{config.frames} * config.frame_size *
                          (config.queues.empty() ? 1 : config.queues.size());
    if (cur.rlim_cur != RLIM_INFINITY && need > cur.rlim_cur)
      p->info.notes += "RLIMIT_MEMLOCK could not be raised (" + std::to_string(cur.rlim_cur >> 10) +
                       " KiB); UMEM needs " + std::to_string(need >> 10) + " KiB (fine with CAP_IPC_LOCK)\n";
  }

  detail::xdp_attach_request req;
  req.ifname = config.device;
  req.ifindex = static_cast<int>(ifindex);
  req.try_native = config.mode != xdp_mode_request::generic;
  req.try_generic = config.mode != xdp_mode_request::native;
  req.config = config.prefilter;
  p->program = detail::xdp_program_attachment::attach(req);
  p->info.native = p->program.native();
  p->info.dispatcher = p->program.dispatcher();
  p->info.replaced_stale = p->program.replaced_stale();
  p->info.notes += p->program.notes();

  std::vector<uint32_t> queue_ids = config.queues;
  if (queue_ids.empty())
    for (uint32_t q = 0, n = device_rx_queues(config.device); q < n; ++q) queue_ids.push_back(q);
  for (uint32_t q : queue_ids) {
    if (q >= FLOWER_XDP_MAX_QUEUES) throw std::system_error(EINVAL, std::generic_category(), "queue id too large");
    detail::xsk_queue_options o;
    o.ifname = config.device;
    o.queue_id = q;
    o.frames = config.frames;
    o.frame_size = config.frame_size;
    o.busy_poll = config.busy_poll;
    o.xsks_map_fd = p->program.xsks_map_fd();
    o.zero_copy = config.zero_copy != zero_copy_request::off;
    std::unique_ptr<detail::xsk_queue> queue;
    try {
      queue = create_with_retry(o);
    } catch (const std::system_error& e) {
      if (config.zero_copy != zero_copy_request::auto_select) throw;
      p->info.notes += "queue " + std::to_string(q) + ": zero-copy unavailable (" +
                       e.code().message() + "), using copy mode\n";
      o.zero_copy = false;
      queue = create_with_retry(o);
    }
    if (config.busy_poll && !queue->busy_poll())
      p->info.notes += "queue " + std::to_string(q) + ": busy polling not available\n";
    p->info.queues.push_back({q, queue->zero_copy(), queue->busy_poll()});
    p->fds.push_back({queue->fd(), POLLIN, 0});
    p->queues.push_back(std::move(queue));
  }
  return xdp_source(std::move(p));
}

xdp_source::xdp_source(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
xdp_source::xdp_source(xdp_source&&) noexcept = default;
xdp_source& xdp_source::operator=(xdp_source&&) noexcept = default;
xdp_source::~xdp_source() {
  if (impl_) impl_->queues.clear();  // sockets and UMEMs before the program
}

size_t xdp_source::next_batch(std::span<packet_view> out, int timeout_ms) noexcept {
  if (size_t n = impl_->take(out)) return n;
  if (timeout_ms <= 0) return 0;
  // Idle: sleep in poll(), which also services need_wakeup on the fill rings.
  if (::poll(impl_->fds.data(), impl_->fds.size(), timeout_ms) <= 0) return 0;
  return impl_->take(out);
}

void xdp_source::release_batch() noexcept {
  for (auto& q : impl_->queues) q->release();
}

const xdp_source_info& xdp_source::info() const noexcept { return impl_->info; }

std::vector<xdp_socket_stats> xdp_source::socket_stats() const {
  std::vector<xdp_socket_stats> out;
  for (const auto& q : impl_->queues) out.push_back(q->stats());
  return out;
}

std::vector<flower_xdp_counters> xdp_source::program_counters() const {
  return impl_->program.read_counters();
}

uint32_t device_rx_queues(const std::string& device) {
  std::error_code ec;
  uint32_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/net/" + device + "/queues", ec))
    if (e.path().filename().string().rfind("rx-", 0) == 0) ++n;
  return n == 0 ? 1 : n;
}

rss_report check_rss_symmetry(const std::string& device) {
  rss_report r;
  if (device_rx_queues(device) <= 1) {
    r.note = "single RX queue: RSS not involved";
    return r;
  }
  detail::unique_fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, device.c_str(), IFNAMSIZ - 1);
  ethtool_rxfh head{};
  head.cmd = ETHTOOL_GRSSH;
  ifr.ifr_data = reinterpret_cast<char*>(&head);
  if (!sock || ::ioctl(sock.get(), SIOCETHTOOL, &ifr) != 0) {
    r.note = std::string("ETHTOOL_GRSSH failed: ") + std::strerror(errno);
    return r;
  }
  std::vector<uint8_t> buf(sizeof(ethtool_rxfh) + head.indir_size * sizeof(uint32_t) + head.key_size);
  auto* rxfh = reinterpret_cast<ethtool_rxfh*>(buf.data());
  *rxfh = head;
  rxfh->cmd = ETHTOOL_GRSSH;
  ifr.ifr_data = reinterpret_cast<char*>(rxfh);
  if (::ioctl(sock.get(), SIOCETHTOOL, &ifr) != 0) {
    r.note = std::string("ETHTOOL_GRSSH failed: ") + std::strerror(errno);
    return r;
  }
  r.checked = true;
  const uint8_t* key = buf.data() + sizeof(ethtool_rxfh) + rxfh->indir_size * sizeof(uint32_t);
#ifdef RXH_XFRM_SYM_XOR
  if (rxfh->input_xfrm & RXH_XFRM_SYM_XOR) {
    r.symmetric = true;
    r.note = "hash input is symmetric-xor";
    return r;
  }
#endif
  bool periodic = rxfh->key_size >= 4;
  for (uint32_t i = 2; i < rxfh->key_size; ++i) periodic = periodic && key[i] == key[i - 2];
  r.symmetric = periodic;
  r.note = periodic ? "Toeplitz key repeats every 16 bits: symmetric"
                    : "Toeplitz key is not symmetric: the two directions of a flow may land on "
                      "different queues (set e.g. `ethtool -X DEV hkey 6d:5a:...`)";
  return r;
}

}  // namespace flower
