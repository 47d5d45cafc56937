#include "capture/packet_filter.h"

#include <pcap/pcap.h>

#include <array>
#include <utility>

namespace flower {
namespace {

// Files carry LINKTYPE_ values; libpcap compiles for DLT_ values. They agree
// except for a few historical numbers.
int dlt_for(link_type link) noexcept {
  switch (static_cast<uint16_t>(link)) {
    case 100: return DLT_ATM_RFC1483;
    case 101: return DLT_RAW;
    default: return static_cast<uint16_t>(link);
  }
}

struct pcap_dead {
  pcap_t* p;
  explicit pcap_dead(int dlt, uint32_t snaplen) noexcept : p(pcap_open_dead(dlt, static_cast<int>(snaplen))) {}
  ~pcap_dead() {
    if (p) pcap_close(p);
  }
  pcap_dead(const pcap_dead&) = delete;
  pcap_dead& operator=(const pcap_dead&) = delete;
};

bool blank(const std::string& s) noexcept {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return false;
  return true;
}

}  // namespace

struct packet_filter::impl {
  enum class state : uint8_t { free, compiled, uncompilable };
  struct slot {
    uint16_t link = 0;
    state st = state::free;
    bpf_program program{};
  };

  std::string expression;
  uint32_t snaplen = 262144;
  std::array<slot, max_link_types> slots{};
  packet_filter_counters counters;

  impl() = default;
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  ~impl() {
    for (slot& s : slots)
      if (s.st == state::compiled) pcap_freecode(&s.program);
  }

  // Compiles for `link`; on failure fills `error` when given.
  bool compile_into(slot& s, link_type link, std::string* error) noexcept {
    s.link = static_cast<uint16_t>(link);
    s.st = state::uncompilable;
    pcap_dead dead(dlt_for(link), snaplen);
    if (!dead.p) return false;
    if (pcap_compile(dead.p, &s.program, expression.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
      if (error) {
        try {
          *error = pcap_geterr(dead.p);
        } catch (...) {
        }
      }
      return false;
    }
    s.st = state::compiled;
    return true;
  }

  // The slot for `link`, compiling on first use; nullptr if the table is full.
  slot* find(link_type link) noexcept {
    const auto key = static_cast<uint16_t>(link);
    for (slot& s : slots) {
      if (s.st == state::free) {
        compile_into(s, link, nullptr);
        return &s;
      }
      if (s.link == key) return &s;
    }
    return nullptr;
  }
};

packet_filter packet_filter::compile(const std::string& expression, uint32_t snaplen) {
  packet_filter f;
  if (blank(expression)) return f;
  auto s = std::make_unique<impl>();
  s->expression = expression;
  s->snaplen = snaplen == 0 ? 262144 : snaplen;
  std::string error;
  if (!s->compile_into(s->slots[0], link_type::ethernet, &error))
    throw capture_error("bad filter expression \"" + expression + "\": " +
                        (error.empty() ? std::string("libpcap could not compile it") : error));
  f.impl_ = std::move(s);
  return f;
}

packet_filter::packet_filter() = default;
packet_filter::packet_filter(packet_filter&&) noexcept = default;
packet_filter& packet_filter::operator=(packet_filter&&) noexcept = default;
packet_filter::~packet_filter() = default;

bool packet_filter::empty() const noexcept { return !impl_; }

size_t packet_filter::keep_matching(std::span<packet_view> batch) noexcept {
  if (!impl_) return batch.size();
  size_t kept = 0;
  for (const packet_view& p : batch)
    if (matches(p)) batch[kept++] = p;
  return kept;
}

bool packet_filter::matches(const packet_view& packet) noexcept {
  if (!impl_) return true;
  impl& s = *impl_;
  impl::slot* slot = s.find(packet.link);
  if (!slot || slot->st != impl::state::compiled) {
    ++s.counters.uncompilable;
    return false;
  }
  pcap_pkthdr hdr{};
  hdr.ts.tv_sec = static_cast<time_t>(packet.ts_ns / 1000000000u);
  hdr.ts.tv_usec = static_cast<suseconds_t>(packet.ts_ns % 1000000000u / 1000u);
  hdr.caplen = packet.caplen;
  hdr.len = packet.wire_len;
  const bool ok = pcap_offline_filter(&slot->program, &hdr, packet.data) != 0;
  ++(ok ? s.counters.matched : s.counters.rejected);
  return ok;
}

const std::string& packet_filter::expression() const noexcept {
  static const std::string none;
  return impl_ ? impl_->expression : none;
}

const packet_filter_counters& packet_filter::counters() const noexcept {
  static const packet_filter_counters zero;
  return impl_ ? impl_->counters : zero;
}

}  // namespace flower
