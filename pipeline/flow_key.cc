// flow_key hashes and address text. See flow_key.h for the contract.

#include "pipeline/flow_key.h"

#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>

#include "pipeline/detail/key_hash.h"

namespace flower {

hash_key hash_key::from_seed(uint64_t seed) noexcept {
  // splitmix64 spreads any seed (0, 1, 2, ...) over all 64 bits of each
  // word; XOR onto the constants keeps their spread for every seed.
  static constexpr uint64_t base[6] = {detail::kHashC0, detail::kHashC1, detail::kHashC2,
                                       detail::kHashC3, detail::kHashC4, detail::kHashC5};
  hash_key h;
  uint64_t s = seed;
  for (int i = 0; i < 6; ++i) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    h.k[i] = base[i] ^ z ^ (z >> 31);
  }
  return h;
}

uint64_t random_hash_seed() {
  uint64_t seed;
  ssize_t got;
  do {
    got = getrandom(&seed, sizeof seed, 0);
  } while (got < 0 && errno == EINTR);
  if (got != static_cast<ssize_t>(sizeof seed))
    throw std::system_error(got < 0 ? errno : EIO, std::generic_category(), "getrandom (flow hash seed)");
  return seed;
}

uint64_t key_hash(const flow_key& k, const hash_key& key) noexcept { return detail::key_hash_inline(k, key); }

uint64_t shard_hash(const flow_key& k, const hash_key& key) noexcept {
  using detail::load64;
  const bool a_low = std::memcmp(k.addr_a.data(), k.addr_b.data(), 16) <= 0;
  const uint8_t* lo = a_low ? k.addr_a.data() : k.addr_b.data();
  const uint8_t* hi = a_low ? k.addr_b.data() : k.addr_a.data();
  const uint64_t rest = uint64_t{k.vlan} | uint64_t{k.proto} << 16 | uint64_t{k.ip_version} << 24;
  return detail::hash5(load64(lo), load64(lo + 8), load64(hi), load64(hi + 8), rest, key);
}

std::string address_string(const std::array<uint8_t, 16>& addr, uint8_t ip_version) {
  char text[INET6_ADDRSTRLEN] = {};
  const bool v4 = ip_version == 4;
  if (inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? addr.data() + 12 : addr.data(), text, sizeof text) == nullptr)
    return {};
  return text;
}

}  // namespace flower
