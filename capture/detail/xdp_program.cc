#include "capture/detail/xdp_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <xdp/libxdp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "bpf/flower_xdp_shared.h"
#include "flower_xdp.skel.h"

namespace flower::detail {
namespace {

// BPF_F_XDP_DEV_BOUND_ONLY (linux 6.3); Debian 12's uapi headers are older.
constexpr uint32_t kDevBoundOnly = 1u << 6;

// libxdp/libbpf chatter goes to stderr only with FLOWER_DEBUG set (one level
// quieter than ours); what matters is reported by us as one line.
int quiet_print(enum libxdp_print_level level, const char* fmt, va_list ap) {
  if (level == LIBXDP_DEBUG || !std::getenv("FLOWER_DEBUG")) return 0;
  std::fputs("libxdp: ", stderr);
  return std::vfprintf(stderr, fmt, ap);
}
int quiet_libbpf_print(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level == LIBBPF_DEBUG || !std::getenv("FLOWER_DEBUG")) return 0;
  std::fputs("libbpf: ", stderr);
  return std::vfprintf(stderr, fmt, ap);
}

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err < 0 ? -err : err, std::generic_category(), what);
}

std::string libxdp_message(long err) {
  char buf[256];
  libxdp_strerror(static_cast<int>(err), buf, sizeof buf);
  return buf;
}

void ensure_bpffs() {
  struct statfs fs {};
  if (statfs("/sys/fs/bpf", &fs) == 0 && fs.f_type == BPF_FS_MAGIC) return;
  ::mkdir("/sys/fs/bpf", 0700);
  if (::mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr) != 0)
    throw_errno(errno, "mount bpffs at /sys/fs/bpf");
}

void remove_pins(const std::string& dir) noexcept {
  for (const char* name : {"prog", "xsks", "counters"}) ::unlink((dir + "/" + name).c_str());
  ::rmdir(dir.c_str());
}

uint32_t pinned_prog_id(const std::string& dir) noexcept {
  int fd = bpf_obj_get((dir + "/prog").c_str());
  if (fd < 0) return 0;
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  uint32_t id = bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
  ::close(fd);
  return id;
}

// Detach a leftover flower_xdp (a sensor killed with SIGKILL leaves its
// program attached); refuse if anything else is attached.
bool replace_stale(const xdp_attach_request& req, const std::string& pin_dir) {
  xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(req.ifindex);
  if (!mp || libxdp_get_error(mp)) return false;  // nothing attached
  const uint32_t pinned_id = pinned_prog_id(pin_dir);
  std::string foreign;
  int ours = 0;
  auto check = [&](const xdp_program* p) {
    if (!p) return;
    const bool mine = std::strcmp(xdp_program__name(p), FLOWER_XDP_PROG_NAME) == 0 ||
                      std::strcmp(xdp_program__name(p), FLOWER_XDP_HWTS_PROG_NAME) == 0 ||
                      (pinned_id != 0 && xdp_program__id(p) == pinned_id);
    if (mine) {
      ++ours;
    } else if (foreign.empty()) {
      foreign = std::string("'") + xdp_program__name(p) + "' (id " +
                std::to_string(xdp_program__id(p)) + ")";
    }
  };
  if (xdp_multiprog__is_legacy(mp)) {
    check(xdp_multiprog__main_prog(mp));
  } else {
    for (xdp_program* p = xdp_multiprog__next_prog(nullptr, mp); p;
         p = xdp_multiprog__next_prog(p, mp))
      check(p);
  }
  check(xdp_multiprog__hw_prog(mp));
  if (!foreign.empty()) {
    xdp_multiprog__close(mp);
    throw std::runtime_error(req.ifname + " already has XDP program " + foreign +
                             " attached; it is not flower's, refusing to replace it");
  }
  if (ours == 0) {
    xdp_multiprog__close(mp);
    return false;
  }
  int err = xdp_multiprog__detach(mp);
  xdp_multiprog__close(mp);
  if (err) throw_errno(err, "detach stale flower_xdp from " + req.ifname);
  return true;
}

}  // namespace

std::string flower_pin_dir(const std::string& ifname) {
  return std::string(FLOWER_XDP_PIN_ROOT) + "/" + ifname;
}

xdp_program_attachment xdp_program_attachment::attach(const xdp_attach_request& req) {
  libxdp_set_print(quiet_print);
  libbpf_set_print(quiet_libbpf_print);
  ensure_bpffs();

  xdp_program_attachment a;
  a.ifindex_ = req.ifindex;
  a.pin_dir_ = flower_pin_dir(req.ifname);
  a.replaced_stale_ = replace_stale(req, a.pin_dir_);
  remove_pins(a.pin_dir_);
  if (a.replaced_stale_) a.notes_ += "replaced a stale flower_xdp left on " + req.ifname + "\n";

  if (req.try_native && req.rx_timestamps) {
    try {
      a.load_and_attach(req, true);
    } catch (const std::exception& e) {
      a.notes_ += std::string("XDP metadata timestamps unavailable (") + e.what() +
                  "), timestamps from one clock read per batch\n";
      a.reset_program();
    }
  }
  if (!a.prog_) a.load_and_attach(req, false);

  if (xdp_multiprog* mp = xdp_multiprog__get_from_ifindex(req.ifindex); mp && !libxdp_get_error(mp)) {
    a.dispatcher_ = !xdp_multiprog__is_legacy(mp);
    xdp_multiprog__close(mp);
  }
  if (!a.dispatcher_) a.notes_ += "libxdp dispatcher unavailable, attached as a single program\n";

  if (::mkdir(FLOWER_XDP_PIN_ROOT, 0700) != 0 && errno != EEXIST) throw_errno(errno, "mkdir " FLOWER_XDP_PIN_ROOT);
  if (::mkdir(a.pin_dir_.c_str(), 0700) != 0 && errno != EEXIST) throw_errno(errno, "mkdir " + a.pin_dir_);
  if (int e = bpf_obj_pin(xdp_program__fd(a.prog_), (a.pin_dir_ + "/prog").c_str())) throw_errno(errno ? errno : e, "pin program");
  if (int e = bpf_map__pin(a.skel_->maps.xsks, (a.pin_dir_ + "/xsks").c_str())) throw_errno(e, "pin xsks map");
  if (int e = bpf_map__pin(a.skel_->maps.counters, (a.pin_dir_ + "/counters").c_str())) throw_errno(e, "pin counters map");
  return a;
}

// Open the skeleton with one of its two programs and attach it: with
// `hwts`, flower_xdp_hwts, device-bound and native only (the kernel allows
// the timestamp kfunc only in a program bound to the device); otherwise
// flower_xdp, native then generic as requested.
void xdp_program_attachment::load_and_attach(const xdp_attach_request& req, bool hwts) {
  skel_ = flower_xdp__open();
  if (!skel_) throw_errno(errno, "open BPF skeleton flower_xdp");
  skel_->rodata->cfg = req.config;
  bpf_program* used = hwts ? skel_->progs.flower_xdp_hwts : skel_->progs.flower_xdp;
  bpf_program* unused = hwts ? skel_->progs.flower_xdp : skel_->progs.flower_xdp_hwts;
  bpf_program__set_autoload(unused, false);
  if (hwts) {
    bpf_program__set_ifindex(used, static_cast<uint32_t>(req.ifindex));
    if (int e = bpf_program__set_flags(used, bpf_program__flags(used) | kDevBoundOnly))
      throw_errno(e, "mark flower_xdp_hwts device-bound");
  }

  DECLARE_LIBXDP_OPTS(xdp_program_opts, opts, .obj = skel_->obj,
                      .prog_name = hwts ? FLOWER_XDP_HWTS_PROG_NAME : FLOWER_XDP_PROG_NAME);
  prog_ = xdp_program__create(&opts);
  if (long err = libxdp_get_error(prog_)) {
    prog_ = nullptr;
    throw_errno(static_cast<int>(err), "create XDP program: " + libxdp_message(err));
  }

  std::string failures;
  int err = -EINVAL;
  if (req.try_native) {
    err = xdp_program__attach(prog_, req.ifindex, XDP_MODE_NATIVE, 0);
    if (err == 0) native_ = true;
    else failures = "native: " + libxdp_message(err);
  }
  if (err != 0 && req.try_generic && !hwts) {
    if (req.try_native) notes_ += "native XDP failed (" + libxdp_message(err) + "), using generic\n";
    err = xdp_program__attach(prog_, req.ifindex, XDP_MODE_SKB, 0);
    if (err != 0) failures += (failures.empty() ? "" : "; ") + std::string("generic: ") + libxdp_message(err);
  }
  if (err != 0) throw_errno(err, "attach XDP to " + req.ifname + " (" + failures + ")");
  hw_timestamps_ = hwts;
}

// Detach and close what load_and_attach made.
void xdp_program_attachment::reset_program() noexcept {
  if (prog_) {
    if (xdp_program__is_attached(prog_, ifindex_) != XDP_MODE_UNSPEC)
      xdp_program__detach(prog_, ifindex_, native_ ? XDP_MODE_NATIVE : XDP_MODE_SKB, 0);
    xdp_program__close(prog_);
    prog_ = nullptr;
  }
  if (skel_) flower_xdp__destroy(skel_);
  skel_ = nullptr;
  native_ = hw_timestamps_ = false;
}

xdp_program_attachment::xdp_program_attachment(xdp_program_attachment&& o) noexcept
    : skel_(std::exchange(o.skel_, nullptr)),
      prog_(std::exchange(o.prog_, nullptr)),
      ifindex_(o.ifindex_),
      native_(o.native_),
      hw_timestamps_(o.hw_timestamps_),
      dispatcher_(o.dispatcher_),
      replaced_stale_(o.replaced_stale_),
      pin_dir_(std::move(o.pin_dir_)),
      notes_(std::move(o.notes_)) {
  o.pin_dir_.clear();
}

xdp_program_attachment& xdp_program_attachment::operator=(xdp_program_attachment&& o) noexcept {
  if (this != &o) {
    reset();
    skel_ = std::exchange(o.skel_, nullptr);
    prog_ = std::exchange(o.prog_, nullptr);
    ifindex_ = o.ifindex_;
    native_ = o.native_;
    hw_timestamps_ = o.hw_timestamps_;
    dispatcher_ = o.dispatcher_;
    replaced_stale_ = o.replaced_stale_;
    pin_dir_ = std::move(o.pin_dir_);
    o.pin_dir_.clear();
    notes_ = std::move(o.notes_);
  }
  return *this;
}

xdp_program_attachment::~xdp_program_attachment() { reset(); }

void xdp_program_attachment::reset() noexcept {
  if (!pin_dir_.empty()) remove_pins(pin_dir_);  // the pins only hold references
  pin_dir_.clear();
  reset_program();
}

int xdp_program_attachment::xsks_map_fd() const noexcept { return bpf_map__fd(skel_->maps.xsks); }

std::vector<flower_xdp_counters> xdp_program_attachment::read_counters() const {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) throw_errno(cpus, "count possible CPUs");
  std::vector<flower_xdp_counters> values(static_cast<size_t>(cpus));
  uint32_t key = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.counters), &key, values.data()) != 0)
    throw_errno(errno, "read XDP counters");
  return values;
}

}  // namespace flower::detail
