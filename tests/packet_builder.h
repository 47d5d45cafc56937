#pragma once
// packet_builder: hand-made frames for tests, one protocol layer per call.
//
//   auto frame = packet_builder{}
//                    .eth(0x8100).vlan(10, 0x0800)
//                    .ipv4("10.0.0.1", "10.0.0.2", 6)
//                    .tcp(1234, 80, tcp_syn)
//                    .build();
//   packet_view v = frame.view();           // link type Ethernet by default
//
// Layers are written in order; every "next protocol" field is given by the
// caller, so a test shows exactly what is on the wire. Length fields (IPv4
// total length, IPv6 payload length, UDP length, PPPoE length, NFLOG payload
// TLV) are filled in by build() from what follows them, unless the test set
// one explicitly (e.g. a bogus total length). Test-only: allocates freely.

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "pipeline/packet.h"

namespace flower::test {

inline constexpr uint8_t tcp_fin = 0x01;
inline constexpr uint8_t tcp_syn = 0x02;
inline constexpr uint8_t tcp_rst = 0x04;
inline constexpr uint8_t tcp_ack = 0x10;

// A built frame: owns its bytes, hands out views.
struct frame {
  std::vector<uint8_t> bytes;
  link_type link = link_type::ethernet;

  packet_view view() const { return view(static_cast<uint32_t>(bytes.size())); }
  // The first `caplen` bytes, as if cut by a snaplen; wire_len stays the full size.
  packet_view view(uint32_t caplen) const {
    packet_view v;
    v.data = bytes.data();
    v.caplen = caplen;
    v.wire_len = static_cast<uint32_t>(bytes.size());
    v.ts_ns = 1'000'000'000;
    v.link = link;
    return v;
  }
  size_t size() const { return bytes.size(); }
};

struct ipv4_options {
  uint16_t id = 0x1234;
  uint16_t frag_offset = 0;     // in 8-byte units
  bool more_fragments = false;
  int total_length = -1;        // -1: computed by build()
  int ihl = -1;                 // -1: 5 + options / 4
  std::vector<uint8_t> options; // raw IPv4 options (multiple of 4 for a sane IHL)
};

class packet_builder {
 public:
  packet_builder& link(link_type t) { link_ = t; return *this; }

  // --- link layers ---
  packet_builder& eth(uint16_t type) {
    bytes({0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb});
    return be16(type);
  }
  packet_builder& vlan(uint16_t id, uint16_t next_type, uint8_t pcp = 0) {
    be16(static_cast<uint16_t>((pcp << 13) | (id & 0x0fff)));
    return be16(next_type);
  }
  packet_builder& mpls(uint32_t label, bool bottom, uint8_t ttl = 64) {
    be32((label << 12) | (bottom ? 0x100u : 0u) | ttl);
    return *this;
  }
  packet_builder& pw_control_word() { return be32(0); }
  packet_builder& pppoe_session(uint16_t ppp_protocol, uint16_t session = 1) {
    bytes({0x11, 0x00});
    be16(session);
    fix(fixup::pppoe_length, 0);
    be16(0);
    return be16(ppp_protocol);
  }
  packet_builder& sll(uint16_t protocol, uint16_t arphrd = 1) {
    link_ = link_type::linux_sll;
    be16(0);
    be16(arphrd);
    be16(6);
    bytes({0, 1, 2, 3, 4, 5, 0, 0});
    return be16(protocol);
  }
  packet_builder& sll2(uint16_t protocol, uint16_t arphrd = 1) {
    link_ = link_type::linux_sll2;
    be16(protocol);
    be16(0);
    be32(2);
    be16(arphrd);
    bytes({0, 6});
    return bytes({0, 1, 2, 3, 4, 5, 0, 0});
  }
  packet_builder& null_family(uint32_t af) {  // BSD loopback, little-endian host
    link_ = link_type::null;
    return bytes({static_cast<uint8_t>(af), static_cast<uint8_t>(af >> 8), static_cast<uint8_t>(af >> 16),
                  static_cast<uint8_t>(af >> 24)});
  }
  packet_builder& loop_family(uint32_t af) {
    link_ = link_type::loop;
    return be32(af);
  }
  packet_builder& ppp(uint16_t protocol, bool address_control = true) {
    link_ = link_type::ppp;
    if (address_control) bytes({0xff, 0x03});
    return be16(protocol);
  }
  packet_builder& raw(link_type t = link_type::raw) { link_ = t; return *this; }
  // NFLOG header + a prefix TLV + the payload TLV (type 9) holding what follows.
  packet_builder& nflog(uint8_t family) {
    link_ = link_type::nflog;
    bytes({family, 0, 0, 1});
    le16(8); le16(1); bytes({0x08, 0x00, 0x00, 0x00});  // NFULA_PACKET_HDR-like TLV
    fix(fixup::nflog_tlv, 0);
    le16(0);
    return le16(9);
  }

  // --- IP ---
  packet_builder& ipv4(const std::string& src, const std::string& dst, uint8_t proto,
                       const ipv4_options& o = {}) {
    size_t start = buf_.size();
    size_t hl = 20 + o.options.size();
    int ihl = o.ihl >= 0 ? o.ihl : static_cast<int>(hl / 4);
    u8(static_cast<uint8_t>(0x40 | (ihl & 0x0f)));
    u8(0);
    if (o.total_length >= 0) {
      be16(static_cast<uint16_t>(o.total_length));
    } else {
      fix(fixup::ipv4_total, 0, start);
      be16(0);
    }
    be16(o.id);
    be16(static_cast<uint16_t>((o.more_fragments ? 0x2000 : 0) | (o.frag_offset & 0x1fff)));
    u8(64);
    u8(proto);
    be16(0);
    addr(AF_INET, src);
    addr(AF_INET, dst);
    return bytes(o.options);
  }
  packet_builder& ipv6(const std::string& src, const std::string& dst, uint8_t next_header,
                       int payload_length = -1) {
    size_t start = buf_.size();
    be32(0x60000000);
    if (payload_length >= 0) {
      be16(static_cast<uint16_t>(payload_length));
    } else {
      fix(fixup::ipv6_payload, 0, start);
      be16(0);
    }
    u8(next_header);
    u8(64);
    addr(AF_INET6, src);
    return addr(AF_INET6, dst);
  }
  // Hop-by-Hop / Routing / Destination options: 8 * (len_units + 1) bytes.
  packet_builder& ipv6_ext(uint8_t next_header, uint8_t len_units = 0) {
    u8(next_header);
    u8(len_units);
    for (int i = 0; i < (len_units + 1) * 8 - 2; ++i) u8(i == 0 ? 1 : 0);  // PadN-ish filler
    return *this;
  }
  packet_builder& ipv6_frag(uint8_t next_header, uint16_t offset_units, bool more, uint32_t id) {
    u8(next_header);
    u8(0);
    be16(static_cast<uint16_t>((offset_units << 3) | (more ? 1 : 0)));
    return be32(id);
  }

  // --- transports ---
  packet_builder& tcp(uint16_t sport, uint16_t dport, uint8_t flags = tcp_ack) {
    be16(sport); be16(dport); be32(1); be32(0);
    u8(0x50); u8(flags); be16(65535); be16(0); be16(0);
    return *this;
  }
  // `length` -1: computed by build(); otherwise written as given.
  packet_builder& udp(uint16_t sport, uint16_t dport, int length = -1) {
    size_t start = buf_.size();
    be16(sport); be16(dport);
    if (length < 0) fix(fixup::udp_length, 0, start);
    be16(static_cast<uint16_t>(length < 0 ? 0 : length));
    return be16(0);
  }
  packet_builder& sctp(uint16_t sport, uint16_t dport) {
    be16(sport); be16(dport); be32(0xdeadbeef); return be32(0);
  }
  packet_builder& icmp(uint8_t type, uint8_t code) { u8(type); u8(code); be16(0); return be32(0x00010001); }
  packet_builder& esp(uint32_t spi) { be32(spi); return be32(1); }
  packet_builder& ah(uint8_t next_header, uint32_t spi) {
    u8(next_header); u8(4); be16(0); be32(spi); be32(1); return be32(0);  // 24-byte AH with 12-byte ICV
  }

  // --- tunnels ---
  // GRE version 0 with optional checksum, key and sequence; `version` 1 = PPTP.
  packet_builder& gre(uint16_t protocol, bool checksum = false, bool key = false, bool seq = false,
                      uint8_t version = 0) {
    be16(static_cast<uint16_t>((checksum ? 0x8000 : 0) | (key ? 0x2000 : 0) | (seq ? 0x1000 : 0) | version));
    be16(protocol);
    if (checksum) be32(0);
    if (key) be32(0x0000abcd);
    if (seq) be32(7);
    return *this;
  }
  packet_builder& erspan2() { be16(0x1000 | 5); be16(0x0001); return be32(0); }
  packet_builder& erspan3(bool platform) {
    be32(0x20000001); be32(0); be16(0); u8(0); u8(platform ? 1 : 0);  // 12 bytes, O bit last
    if (platform) { be32(0); be32(0); }
    return *this;
  }
  packet_builder& vxlan(uint32_t vni) { be32(0x08000000); return be32(vni << 8); }
  // GTPv1-U header; `ext` adds the optional 4 bytes and a chain of
  // extension headers of the given 4-byte unit lengths.
  packet_builder& gtpu(uint8_t message_type = 0xff, std::initializer_list<uint8_t> ext = {},
                       bool seq = false) {
    bool opt = seq || ext.size() > 0;
    u8(static_cast<uint8_t>(0x30 | (ext.size() ? 0x04 : 0) | (seq ? 0x02 : 0)));
    u8(message_type);
    be16(0);
    be32(0x11223344);
    if (opt) {
      be16(1); u8(0);
      u8(ext.size() ? 0x85 : 0);
      size_t i = 0;
      for (uint8_t units : ext) {
        u8(units);
        for (int k = 0; k < units * 4 - 2; ++k) u8(0);
        u8(++i == ext.size() ? 0 : 0x85);
      }
    }
    return *this;
  }
  packet_builder& geneve(uint16_t protocol, uint8_t option_units = 0) {
    u8(option_units & 0x3f); u8(0); be16(protocol); be32(0x00000100);
    for (int i = 0; i < option_units * 4; ++i) u8(0);
    return *this;
  }
  packet_builder& teredo_auth(uint8_t id_len = 0, uint8_t auth_len = 0) {
    be16(0x0001); u8(id_len); u8(auth_len);
    for (int i = 0; i < id_len + auth_len + 8 + 1; ++i) u8(0);
    return *this;
  }
  packet_builder& teredo_origin() { be16(0); be16(0x1234); return be32(0x01020304); }

  // --- anything ---
  packet_builder& payload(size_t n, uint8_t fill = 0xab) { buf_.insert(buf_.end(), n, fill); return *this; }
  packet_builder& bytes(const std::vector<uint8_t>& b) { buf_.insert(buf_.end(), b.begin(), b.end()); return *this; }
  packet_builder& bytes(std::initializer_list<uint8_t> b) { buf_.insert(buf_.end(), b); return *this; }
  packet_builder& u8(uint8_t v) { buf_.push_back(v); return *this; }
  packet_builder& be16(uint16_t v) { u8(static_cast<uint8_t>(v >> 8)); return u8(static_cast<uint8_t>(v)); }
  packet_builder& be32(uint32_t v) { be16(static_cast<uint16_t>(v >> 16)); return be16(static_cast<uint16_t>(v)); }
  packet_builder& le16(uint16_t v) { u8(static_cast<uint8_t>(v)); return u8(static_cast<uint8_t>(v >> 8)); }

  size_t size() const { return buf_.size(); }

  frame build() const {
    frame f{buf_, link_};
    for (const fixup& x : fixups_) {
      size_t n = 0;
      switch (x.kind) {
        case fixup::ipv4_total: n = f.bytes.size() - x.base; break;
        case fixup::ipv6_payload: n = f.bytes.size() - x.base - 40; break;
        case fixup::udp_length: n = f.bytes.size() - x.base; break;
        case fixup::pppoe_length: n = f.bytes.size() - (x.pos + 2); break;
        case fixup::nflog_tlv: n = f.bytes.size() - x.pos; break;
      }
      if (x.kind == fixup::nflog_tlv) {
        f.bytes[x.pos] = static_cast<uint8_t>(n);
        f.bytes[x.pos + 1] = static_cast<uint8_t>(n >> 8);
      } else {
        f.bytes[x.pos] = static_cast<uint8_t>(n >> 8);
        f.bytes[x.pos + 1] = static_cast<uint8_t>(n);
      }
    }
    return f;
  }

 private:
  struct fixup {
    enum kind_t { ipv4_total, ipv6_payload, udp_length, pppoe_length, nflog_tlv } kind;
    size_t pos;   // where the 16-bit field is
    size_t base;  // where the counted region starts
  };
  void fix(fixup::kind_t k, size_t delta, size_t base = 0) { fixups_.push_back({k, buf_.size() + delta, base}); }
  packet_builder& addr(int af, const std::string& text) {
    uint8_t a[16];
    if (inet_pton(af, text.c_str(), a) != 1) throw std::invalid_argument("bad address " + text);
    return bytes(std::vector<uint8_t>(a, a + (af == AF_INET ? 4 : 16)));
  }

  std::vector<uint8_t> buf_;
  std::vector<fixup> fixups_;
  link_type link_ = link_type::ethernet;
};

}  // namespace flower::test
