// Community ID v1 (https://github.com/corelight/community-id-spec):
//   base64(SHA-1(seed:2 | saddr | daddr | proto:1 | pad:1 | sport:2 | dport:2))
// with all integers in network byte order, the endpoints ordered so both
// directions give the same id, ICMP type/code mapped onto ports, and no port
// bytes at all for protocols without ports.

#include "exporter/community_id.h"

// SHA1_Init & co. are deprecated in OpenSSL 3 (see sha1() below for why
// they are used); this must come before any OpenSSL header.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace flower {
namespace {

constexpr uint8_t kIcmp = 1, kTcp = 6, kUdp = 17, kIcmpv6 = 58, kSctp = 132;

// The ICMP message types that have a counterpart (request <-> reply): such a
// flow is two-way and the counterpart type stands in for the destination
// port. Any other type is one-way and uses its code.
int icmp_counterpart(uint8_t type, bool v6) noexcept {
  if (!v6) {
    switch (type) {
      case 8: return 0;    // echo -> echo reply
      case 0: return 8;
      case 13: return 14;  // timestamp
      case 14: return 13;
      case 15: return 16;  // information
      case 16: return 15;
      case 10: return 9;   // router solicitation -> advertisement
      case 9: return 10;
      case 17: return 18;  // address mask
      case 18: return 17;
      default: return -1;
    }
  }
  switch (type) {
    case 128: return 129;  // echo
    case 129: return 128;
    case 130: return 131;  // MLD query -> report
    case 131: return 130;
    case 133: return 134;  // router solicitation -> advertisement
    case 134: return 133;
    case 135: return 136;  // neighbor solicitation -> advertisement
    case 136: return 135;
    case 139: return 140;  // node information query -> reply
    case 140: return 139;
    case 144: return 145;  // home agent address discovery
    case 145: return 144;
    default: return -1;
  }
}

}  // namespace

namespace {

#ifndef OPENSSL_NO_DEPRECATED_3_0
// OpenSSL's own SHA-1 functions, without the EVP layer: for one 64-byte
// block the EVP calls (provider dispatch, context reset) cost as much as the
// hash itself (65 ns here against 125 ns with a reused EVP context, on a
// CPU with SHA-NI; docs/feed.md). OpenSSL 3 marks them deprecated, not
// removed; a build without them takes the EVP path below.
bool sha1(const uint8_t* data, size_t n, unsigned char* out, unsigned int& out_len) noexcept {
  SHA_CTX c;
  if (SHA1_Init(&c) != 1 || SHA1_Update(&c, data, n) != 1 || SHA1_Final(out, &c) != 1) return false;
  out_len = SHA_DIGEST_LENGTH;
  return true;
}
#else
// One SHA-1 context per thread, fetched and allocated once: EVP_Digest
// allocates a context and looks the algorithm up (under a lock) on every
// call.
class sha1_context {
 public:
  sha1_context() : md_(EVP_MD_fetch(nullptr, "SHA1", nullptr)), ctx_(EVP_MD_CTX_new()) {}
  ~sha1_context() {
    EVP_MD_CTX_free(ctx_);
    EVP_MD_free(md_);
  }
  sha1_context(const sha1_context&) = delete;
  sha1_context& operator=(const sha1_context&) = delete;

  bool digest(const uint8_t* data, size_t n, unsigned char* out, unsigned int& out_len) noexcept {
    return md_ && ctx_ && EVP_DigestInit_ex2(ctx_, md_, nullptr) == 1 && EVP_DigestUpdate(ctx_, data, n) == 1 &&
           EVP_DigestFinal_ex(ctx_, out, &out_len) == 1;
  }

 private:
  EVP_MD* md_;
  EVP_MD_CTX* ctx_;
};

bool sha1(const uint8_t* data, size_t n, unsigned char* out, unsigned int& out_len) noexcept {
  thread_local sha1_context context;
  return context.digest(data, n, out, out_len);
}
#endif

}  // namespace

community_id_text community_id_of(const flow_record& record, uint16_t seed) noexcept {
  const flow_key& k = record.key;
  const bool v4 = k.is_v4();
  const size_t alen = v4 ? 4 : 16;
  const uint8_t* src = k.addr_a.data() + (v4 ? 12 : 0);
  const uint8_t* dst = k.addr_b.data() + (v4 ? 12 : 0);

  bool has_ports = true;
  bool one_way = false;
  uint16_t sport = k.port_a;
  uint16_t dport = k.port_b;
  switch (k.proto) {
    case kTcp:
    case kUdp:
    case kSctp:
      break;
    case kIcmp:
    case kIcmpv6: {
      const auto type = static_cast<uint8_t>(record.icmp_type_code >> 8);
      const auto code = static_cast<uint8_t>(record.icmp_type_code & 0xff);
      const int peer = icmp_counterpart(type, k.proto == kIcmpv6);
      sport = type;
      dport = peer >= 0 ? static_cast<uint16_t>(peer) : code;
      one_way = peer < 0;
      break;
    }
    default:
      has_ports = false;
      break;
  }

  // Order the endpoints (smaller address first, then smaller port), except
  // for one-way ICMP which keeps its direction.
  if (!one_way) {
    const int c = std::memcmp(src, dst, alen);
    if (c > 0 || (c == 0 && has_ports && sport > dport)) {
      std::swap(src, dst);
      std::swap(sport, dport);
    }
  }

  uint8_t buf[2 + 16 + 16 + 2 + 4];
  size_t n = 0;
  buf[n++] = static_cast<uint8_t>(seed >> 8);
  buf[n++] = static_cast<uint8_t>(seed);
  std::memcpy(buf + n, src, alen);
  n += alen;
  std::memcpy(buf + n, dst, alen);
  n += alen;
  buf[n++] = k.proto;
  buf[n++] = 0;  // padding
  if (has_ports) {
    buf[n++] = static_cast<uint8_t>(sport >> 8);
    buf[n++] = static_cast<uint8_t>(sport);
    buf[n++] = static_cast<uint8_t>(dport >> 8);
    buf[n++] = static_cast<uint8_t>(dport);
  }

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  community_id_text id;
  if (!sha1(buf, n, digest, digest_len) || digest_len != 20) return id;
  id.data[0] = '1';
  id.data[1] = ':';
  // 28 base64 characters and the NUL EVP_EncodeBlock writes: 31 <= 32.
  const int b64 = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(id.data + 2), digest, static_cast<int>(digest_len));
  id.size = static_cast<uint8_t>(2 + b64);
  return id;
}

}  // namespace flower
