#pragma once
// xdp_program_attachment: bpf/flower_xdp loaded from its skeleton, attached
// to one device through libxdp, pinned under /sys/fs/bpf/flower/<ifname>.
// Move-only; the destructor detaches and unpins. Throws std::system_error.

#include <cstdint>
#include <string>
#include <vector>

#include "bpf/flower_xdp_shared.h"

struct flower_xdp;    // generated skeleton
struct xdp_program;   // libxdp

namespace flower::detail {

struct xdp_attach_request {
  std::string ifname;
  int ifindex = 0;
  bool try_native = true;
  bool try_generic = true;
  bool rx_timestamps = true;  // try flower_xdp_hwts (device-bound, native) first
  flower_xdp_config config{};
};

class xdp_program_attachment {
 public:
  static xdp_program_attachment attach(const xdp_attach_request& request);

  xdp_program_attachment() = default;
  xdp_program_attachment(xdp_program_attachment&& o) noexcept;
  xdp_program_attachment& operator=(xdp_program_attachment&& o) noexcept;
  ~xdp_program_attachment();

  int xsks_map_fd() const noexcept;
  bool native() const noexcept { return native_; }
  // flower_xdp_hwts is attached: frames carry flower_xdp_meta before them.
  bool hw_timestamps() const noexcept { return hw_timestamps_; }
  bool dispatcher() const noexcept { return dispatcher_; }
  bool replaced_stale() const noexcept { return replaced_stale_; }
  const std::string& notes() const noexcept { return notes_; }
  std::vector<flower_xdp_counters> read_counters() const;

 private:
  void reset() noexcept;
  void load_and_attach(const xdp_attach_request& req, bool hwts);
  void reset_program() noexcept;

  flower_xdp* skel_ = nullptr;
  xdp_program* prog_ = nullptr;
  int ifindex_ = 0;
  bool native_ = false;
  bool hw_timestamps_ = false;
  bool dispatcher_ = false;
  bool replaced_stale_ = false;
  std::string pin_dir_;
  std::string notes_;
};

// Pin directory of our program for a device.
std::string flower_pin_dir(const std::string& ifname);

}  // namespace flower::detail
