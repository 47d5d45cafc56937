// xdp_inject: BPF_PROG_RUN live-frames sender (see xdp_inject.h).
#include "tools/xdp_inject.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <system_error>

#include "flower_blast.skel.h"

namespace flower {
namespace {

struct skeleton_deleter {
  void operator()(flower_blast* s) const noexcept { flower_blast__destroy(s); }
};
using skeleton_ptr = std::unique_ptr<flower_blast, skeleton_deleter>;

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err < 0 ? -err : err, std::generic_category(), what);
}

int quiet_libbpf_print(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level == LIBBPF_DEBUG || !std::getenv("FLOWER_DEBUG")) return 0;
  return std::vfprintf(stderr, fmt, ap);
}

double now_s() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

constexpr uint32_t kMaxRepeat = 1u << 20;  // frames per call when unpaced (~0.3 s)

}  // namespace

xdp_inject_result xdp_inject_run(const xdp_inject_config& cfg) {
  libbpf_set_print(quiet_libbpf_print);
  const unsigned ifindex = if_nametoindex(cfg.ifname.c_str());
  if (ifindex == 0) throw_errno(errno, "no interface " + cfg.ifname);
  if (cfg.frame.size() < 42) throw_errno(EINVAL, "injected frame shorter than Ethernet+IPv4+UDP");

  skeleton_ptr skel(flower_blast__open());
  if (!skel) throw_errno(errno, "open BPF skeleton flower_blast");
  skel->rodata->flows = std::max<uint32_t>(cfg.flows, 1);
  skel->rodata->first_port = cfg.first_port;
  skel->rodata->gap_ps = cfg.pps > 0 ? static_cast<uint64_t>(1e12 / cfg.pps) : 0;
  if (int err = flower_blast__load(skel.get())) throw_errno(err, "load flower_blast");
  const int prog_fd = bpf_program__fd(skel->progs.flower_blast);

  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(cfg.frame.size());
  ctx.ingress_ifindex = ifindex;
  ctx.rx_queue_index = 0;

  auto run = [&](uint32_t repeat) {
    DECLARE_LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = cfg.frame.data(),
                        .data_size_in = static_cast<uint32_t>(cfg.frame.size()), .ctx_in = &ctx,
                        .ctx_size_in = sizeof ctx, .repeat = static_cast<int>(repeat), .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
                        .batch_size = cfg.batch_size);
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0)
      throw_errno(errno, "BPF_PROG_RUN live frames on " + cfg.ifname + " (kernel >= 5.18 needed)");
  };

  xdp_inject_result r;
  const double start = now_s();
  double elapsed = 0;
  if (cfg.pps > 0) {
    // One call; the program spaces the frames (see bpf/flower_blast.bpf.c).
    const double total = cfg.pps * cfg.seconds;
    if (total >= 2147483647.0) throw_errno(EINVAL, "--pps x --seconds exceeds 2^31 frames");
    const auto repeat = static_cast<uint32_t>(total);
    run(repeat);
    r.frames = repeat;
    r.calls = 1;
    elapsed = now_s() - start;
  } else {
    // Unpaced: big calls so the ~30 ms teardown of each is a few percent.
    while ((elapsed = now_s() - start) < cfg.seconds) {
      run(kMaxRepeat);
      r.frames += kMaxRepeat;
      ++r.calls;
    }
    elapsed = now_s() - start;
  }
  r.seconds = elapsed;
  if (skel->bss->stamped != r.frames)  // the program ran once per frame
    throw_errno(EIO, "flower_blast stamped " + std::to_string(skel->bss->stamped) + " frames, expected " +
                         std::to_string(r.frames));
  return r;
}

}  // namespace flower
