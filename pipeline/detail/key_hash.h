#pragma once
// Inline body of key_hash()/shard_hash() (flow_key.h), so the flow table's
// hot loop can hash without a call. Everyone else calls the functions.

#include <cstdint>
#include <cstring>

#include "pipeline/flow_key.h"

namespace flower::detail {

inline uint64_t load64(const uint8_t* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

__extension__ typedef unsigned __int128 uint128;

// 64x64 -> 128 multiply folded to 64 bits: every input bit reaches every
// output bit in one step.
inline uint64_t fold_mul(uint64_t a, uint64_t b) noexcept {
  const uint128 r = static_cast<uint128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

// Odd constants with well-spread bits (hex digits of pi, e, sqrt 2); the
// per-run seed is folded into them (hash_key::from_seed), so the hash costs
// the same six XORs with or without a seed.
inline constexpr uint64_t kHashC0 = 0x243f6a8885a308d3ull;
inline constexpr uint64_t kHashC1 = 0x13198a2e03707345ull;
inline constexpr uint64_t kHashC2 = 0xa4093822299f31d1ull;
inline constexpr uint64_t kHashC3 = 0x082efa98ec4e6c89ull;
inline constexpr uint64_t kHashC4 = 0xb7e151628aed2a6bull;
inline constexpr uint64_t kHashC5 = 0x6a09e667f3bcc909ull;

// Five 64-bit words: two independent products (ILP), combined by a third.
inline uint64_t hash5(uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t w4, const hash_key& k) noexcept {
  const uint64_t x = fold_mul(w0 ^ k.k[0], w1 ^ k.k[1]);
  const uint64_t y = fold_mul(w2 ^ k.k[2], w3 ^ k.k[3]);
  return fold_mul(x ^ w4 ^ k.k[4], y ^ k.k[5]);
}

inline uint64_t key_hash_inline(const flow_key& f, const hash_key& k) noexcept {
  const auto* p = reinterpret_cast<const uint8_t*>(&f);
  return hash5(load64(p), load64(p + 8), load64(p + 16), load64(p + 24), load64(p + 32), k);
}

}  // namespace flower::detail
