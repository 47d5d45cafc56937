#include "capture/xdp_source.h"

#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
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

  validate_queues(config.device, config.queues);  // before anything is attached
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
  req.rx_timestamps = config.hw_timestamps;
  req.config = config.prefilter;
  p->program = detail::xdp_program_attachment::attach(req);
  p->info.native = p->program.native();
  p->info.hw_timestamps = p->program.hw_timestamps();
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
    o.metadata = p->program.hw_timestamps();
    o.zero_copy = config.zero_copy != zero_copy_request::off;
    std::unique_ptr<detail::xsk_queue> queue;
    try {
      queue = create_with_retry(o);
    } catch (const std::system_error& e) {
      if (config.zero_copy == zero_copy_request::on) {
        const int err = e.code().value();
        throw std::runtime_error(
            "--zero-copy on: " + config.device + " queue " + std::to_string(q) +
            " cannot bind in zero-copy mode: " + e.code().message() +
            (err == EOPNOTSUPP || err == EINVAL
                 ? std::string(p->info.native ? " (the driver has no AF_XDP zero-copy; veth never has)"
                                              : " (generic XDP never has zero-copy)")
                 : std::string()) +
            "; use --zero-copy auto or off");
      }
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

std::vector<xdp_queue_group> xdp_source::split(size_t groups, uint32_t hold) {
  const size_t nq = impl_->queues.size();
  groups = std::clamp<size_t>(groups, 1, std::max<size_t>(nq, 1));
  std::vector<xdp_queue_group> out(groups);
  for (size_t i = 0; i < nq; ++i) {
    xdp_queue_group& g = out[i % groups];
    g.queues_.push_back(impl_->queues[i].get());
    g.fds_.push_back({impl_->queues[i]->fd(), POLLIN, 0});
    g.ids_.push_back(impl_->queues[i]->queue_id());
  }
  for (xdp_queue_group& g : out) g.hold_ = std::clamp<uint32_t>(hold, 1, xdp_queue_group::kMaxHold);
  return out;
}

void xdp_source::stop_intake() noexcept {
  for (auto& q : impl_->queues) q->stop_intake();
}

uint64_t xdp_source::undelivered() const noexcept {
  uint64_t n = 0;
  for (const auto& q : impl_->queues) n += q->undelivered();
  return n;
}

void xdp_queue_group::stop_intake() noexcept {
  for (detail::xsk_queue* q : queues_) q->stop_intake();
}

uint64_t xdp_queue_group::undelivered() const noexcept {
  uint64_t n = 0;
  for (const detail::xsk_queue* q : queues_) n += q->undelivered();
  return n;
}

size_t xdp_source::queue_count() const noexcept { return impl_->queues.size(); }

size_t xdp_queue_group::next_batch(std::span<packet_view> out) noexcept {
  // The consumer is done with the batch `hold_` calls old: back to the fill ring.
  while (held_n_ >= hold_) {
    const held_batch& b = held_[held_head_];
    queues_[b.queue]->release(b.frames);
    held_head_ = (held_head_ + 1) % kMaxHold;
    --held_n_;
  }
  // Spin over empty rings for a while (a busy queue refills at once), then
  // sleep in poll(), which also services need_wakeup on the fill rings.
  constexpr unsigned kSpinsBeforePoll = 64;
  constexpr int kPollMs = 1;
  const size_t nq = queues_.size();
  for (int attempt = 0; attempt < 2; ++attempt) {
    const uint64_t ts = realtime_ns();  // one clock read per batch
    // One queue per batch, so a held batch is released on one queue.
    for (size_t k = 0; k < nq; ++k) {
      const size_t qi = (next_ + k) % nq;
      const size_t n = queues_[qi]->peek(out, ts);
      if (n == 0) continue;
      next_ = (qi + 1) % nq;
      held_[(held_head_ + held_n_) % kMaxHold] = {static_cast<uint32_t>(qi), static_cast<uint32_t>(n)};
      ++held_n_;
      empty_polls_ = 0;
      return n;
    }
    if (attempt == 1 || ++empty_polls_ < kSpinsBeforePoll) return 0;
    if (::poll(fds_.data(), fds_.size(), kPollMs) <= 0) return 0;
  }
  return 0;
}

void xdp_queue_group::release_batch() noexcept {
  for (detail::xsk_queue* q : queues_) q->release();
  held_head_ = held_n_ = 0;
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

void validate_queues(const std::string& device, const std::vector<uint32_t>& queues) {
  if (queues.empty()) return;
  if (if_nametoindex(device.c_str()) == 0)
    throw std::invalid_argument("--queues: no network interface " + device);
  const uint32_t available = device_rx_queues(device);
  std::vector<uint32_t> seen;
  for (uint32_t q : queues) {
    if (q >= available)
      throw std::invalid_argument("--queues: " + device + " has no RX queue " + std::to_string(q) + " (it has " +
                                  std::to_string(available) + (available == 1 ? ": queue 0)" : ": queues 0-" +
                                  std::to_string(available - 1) + ")"));
    if (std::find(seen.begin(), seen.end(), q) != seen.end())
      throw std::invalid_argument("--queues: queue " + std::to_string(q) + " given twice");
    seen.push_back(q);
  }
}

namespace {
// One SIOCETHTOOL request on a throwaway socket; errno is kept on failure.
bool ethtool_ioctl(const std::string& device, void* data) {
  detail::unique_fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return false;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, device.c_str(), IFNAMSIZ - 1);
  ifr.ifr_data = static_cast<char*>(data);
  return ::ioctl(sock.get(), SIOCETHTOOL, &ifr) == 0;
}
}  // namespace

std::string set_rss_symmetric_key(const std::string& device) {
  ethtool_rxfh head{};
  head.cmd = ETHTOOL_GRSSH;
  if (!ethtool_ioctl(device, &head)) return std::string("ETHTOOL_GRSSH: ") + std::strerror(errno);
  if (head.key_size == 0) return "the device has no RSS key";
  std::vector<uint8_t> buf(sizeof(ethtool_rxfh) + head.key_size);
  auto* rxfh = reinterpret_cast<ethtool_rxfh*>(buf.data());
  rxfh->cmd = ETHTOOL_SRSSH;
  rxfh->indir_size = ETH_RXFH_INDIR_NO_CHANGE;  // keep the queue spread, change only the key
  rxfh->key_size = head.key_size;
  uint8_t* key = buf.data() + sizeof(ethtool_rxfh);
  for (uint32_t i = 0; i < head.key_size; ++i) key[i] = (i & 1) ? 0x5a : 0x6d;
  if (!ethtool_ioctl(device, rxfh)) return std::string("ETHTOOL_SRSSH: ") + std::strerror(errno);
  return {};
}

rss_report check_rss_symmetry(const std::string& device) {
  rss_report r;
  const uint32_t queues = device_rx_queues(device);
  if (queues <= 1) {
    r.note = "single RX queue: RSS not involved";
    return r;
  }
  ethtool_rxfh head{};
  head.cmd = ETHTOOL_GRSSH;
  if (!ethtool_ioctl(device, &head)) {
    r.note = std::to_string(queues) + " RX queues but the RSS key cannot be read (ETHTOOL_GRSSH: " +
             std::strerror(errno) + ")";
    return r;
  }
  std::vector<uint8_t> buf(sizeof(ethtool_rxfh) + head.indir_size * sizeof(uint32_t) + head.key_size);
  auto* rxfh = reinterpret_cast<ethtool_rxfh*>(buf.data());
  *rxfh = head;
  rxfh->cmd = ETHTOOL_GRSSH;
  if (!ethtool_ioctl(device, rxfh)) {
    r.note = std::string("RSS key cannot be read (ETHTOOL_GRSSH: ") + std::strerror(errno) + ")";
    return r;
  }
  r.checked = true;
  const uint8_t* key = buf.data() + sizeof(ethtool_rxfh) + rxfh->indir_size * sizeof(uint32_t);
#ifdef RXH_XFRM_SYM_XOR
  if (rxfh->input_xfrm & RXH_XFRM_SYM_XOR) {
    r.symmetric = true;
    r.note = "RSS hash input is symmetric-xor";
    return r;
  }
#endif
  // Toeplitz: a key with a 16-bit period hashes (a, b) and (b, a) alike,
  // since addresses and ports are swapped in 16-bit units.
  bool periodic = rxfh->key_size >= 4;
  for (uint32_t i = 2; i < rxfh->key_size; ++i) periodic = periodic && key[i] == key[i - 2];
  r.symmetric = periodic;
  r.note = periodic ? "RSS Toeplitz key repeats every 16 bits: symmetric"
                    : "RSS Toeplitz key is not symmetric: the two directions of a flow may reach different "
                      "queues (--rss-symmetric sets the 6d:5a key, as `ethtool -X " + device + " hkey 6d:5a:...` would)";
  return r;
}

}  // namespace flower
