// fragment_cache: later fragments take the ports of their datagram's first
// fragment; everything else stays a port-0 orphan, counted.

#include "pipeline/fragment_cache.h"

#include <gtest/gtest.h>

namespace flower {
namespace {

constexpr uint64_t T0 = 1'700'000'000'000'000'000ull;

decoded_packet fragment(fragment_kind kind, uint32_t id, uint16_t sport, uint16_t dport, uint64_t ts = T0,
                        uint8_t last_octet = 2) {
  decoded_packet d;
  const uint8_t src[4] = {192, 0, 2, 1};
  const uint8_t dst[4] = {192, 0, 2, last_octet};
  d.key.set_v4(d.key.addr_a, src);
  d.key.set_v4(d.key.addr_b, dst);
  d.key.ip_version = 4;
  d.key.proto = 17;
  d.key.port_a = sport;
  d.key.port_b = dport;
  d.frag = kind;
  d.frag_id = id;
  d.ts_ns = ts;
  return d;
}

TEST(FragmentCache, LaterFragmentTakesThePortsOfTheFirst) {
  fragment_cache c;
  auto first = fragment(fragment_kind::first, 77, 5000, 53);
  auto later = fragment(fragment_kind::later, 77, 0, 0, T0 + 1000);
  c.resolve(first);
  c.resolve(later);
  EXPECT_EQ(later.key.port_a, 5000);
  EXPECT_EQ(later.key.port_b, 53);
  EXPECT_EQ(c.counters().first, 1u);
  EXPECT_EQ(c.counters().resolved, 1u);
  EXPECT_EQ(c.counters().orphans, 0u);
}

TEST(FragmentCache, LaterFragmentBeforeItsFirstIsAnOrphan) {
  fragment_cache c;
  auto later = fragment(fragment_kind::later, 77, 0, 0);
  c.resolve(later);
  EXPECT_EQ(later.key.port_a, 0);
  EXPECT_EQ(later.key.port_b, 0);
  EXPECT_EQ(c.counters().orphans, 1u);
}

TEST(FragmentCache, IdentityMustMatch) {
  fragment_cache c;
  auto first = fragment(fragment_kind::first, 77, 5000, 53);
  c.resolve(first);
  auto other_id = fragment(fragment_kind::later, 78, 0, 0);
  auto other_dst = fragment(fragment_kind::later, 77, 0, 0, T0, 3);
  auto other_proto = fragment(fragment_kind::later, 77, 0, 0);
  other_proto.key.proto = 6;
  auto reversed = fragment(fragment_kind::later, 77, 0, 0);
  reversed.key.swap_endpoints();
  for (auto* p : {&other_id, &other_dst, &other_proto, &reversed}) {
    c.resolve(*p);
    EXPECT_EQ(p->key.port_a, 0);
  }
  EXPECT_EQ(c.counters().orphans, 4u);
  EXPECT_EQ(c.counters().resolved, 0u);
}

TEST(FragmentCache, EntriesOlderThanTheTtlAreIgnored) {
  fragment_cache c(1024, 1'000'000'000);
  auto first = fragment(fragment_kind::first, 9, 5000, 53);
  c.resolve(first);
  auto late = fragment(fragment_kind::later, 9, 0, 0, T0 + 2'000'000'000);
  c.resolve(late);
  EXPECT_EQ(late.key.port_a, 0);
  EXPECT_EQ(c.counters().orphans, 1u);
}

TEST(FragmentCache, OldestEntryIsOverwrittenWhenFull) {
  fragment_cache c(4, 30'000'000'000ull);  // a single 4-way set
  for (uint32_t id = 1; id <= 5; ++id) {
    auto f = fragment(fragment_kind::first, id, static_cast<uint16_t>(1000 + id), 53, T0 + id);
    c.resolve(f);
  }
  auto oldest = fragment(fragment_kind::later, 1, 0, 0, T0 + 10);
  auto newest = fragment(fragment_kind::later, 5, 0, 0, T0 + 10);
  c.resolve(oldest);
  c.resolve(newest);
  EXPECT_EQ(oldest.key.port_a, 0);
  EXPECT_EQ(newest.key.port_a, 1005);
}

TEST(FragmentCache, OuterFirstFragmentIsRemembered) {
  fragment_cache c;
  decoded_packet inner = fragment(fragment_kind::none, 0, 1234, 80);
  inner.has_outer_first_fragment = true;
  inner.outer_first_fragment.key = fragment(fragment_kind::none, 0, 4789, 4789, T0, 9).key;
  inner.outer_first_fragment.id = 555;
  c.resolve(inner);
  EXPECT_EQ(inner.key.port_a, 1234);  // the packet itself is untouched
  auto outer_later = fragment(fragment_kind::later, 555, 0, 0, T0 + 5, 9);
  c.resolve(outer_later);
  EXPECT_EQ(outer_later.key.port_a, 4789);
  EXPECT_EQ(c.counters().first, 1u);
  EXPECT_EQ(c.counters().resolved, 1u);
}

TEST(FragmentCache, UnfragmentedPacketsAreLeftAlone) {
  fragment_cache c;
  auto p = fragment(fragment_kind::none, 77, 5000, 53);
  c.resolve(p);
  EXPECT_EQ(p.key.port_a, 5000);
  EXPECT_EQ(c.counters().first + c.counters().resolved + c.counters().orphans, 0u);
}

}  // namespace
}  // namespace flower
