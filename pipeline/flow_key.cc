// flow_key hashes and address text. See flow_key.h for the contract.

#include "pipeline/flow_key.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include "pipeline/detail/key_hash.h"

namespace flower {

uint64_t key_hash(const flow_key& k) noexcept { return detail::key_hash_inline(k); }

uint64_t shard_hash(const flow_key& k) noexcept {
  using detail::load64;
  const bool a_low = std::memcmp(k.addr_a.data(), k.addr_b.data(), 16) <= 0;
  const uint8_t* lo = a_low ? k.addr_a.data() : k.addr_b.data();
  const uint8_t* hi = a_low ? k.addr_b.data() : k.addr_a.data();
  const uint64_t rest = uint64_t{k.vlan} | uint64_t{k.proto} << 16 | uint64_t{k.ip_version} << 24;
  return detail::hash5(load64(lo), load64(lo + 8), load64(hi), load64(hi + 8), rest);
}

std::string address_string(const std::array<uint8_t, 16>& addr, uint8_t ip_version) {
  char text[INET6_ADDRSTRLEN] = {};
  const bool v4 = ip_version == 4;
  if (inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? addr.data() + 12 : addr.data(), text, sizeof text) == nullptr)
    return {};
  return text;
}

}  // namespace flower
