// SPDX-License-Identifier: GPL-2.0
/* flower_xdp: steer received frames into the AF_XDP socket bound to their RX
 * queue (XSKMAP keyed by rx_queue_index), after optional pre-filters set from
 * user space as read-only data: IP version, a set of IP protocols (256-bit
 * map), 1-in-N sampling.
 * Anything not redirected goes to the kernel stack (XDP_PASS) unless
 * drop_unmatched is set. Every decision is counted per CPU.
 *
 * Two entry points share the code: flower_xdp, and flower_xdp_hwts, which
 * also asks the driver for the frame's receive timestamp (XDP metadata
 * kfunc) and leaves it in the metadata area for user space. The kernel
 * accepts that kfunc only in a device-bound program, so user space loads
 * one of the two (the other is not loaded at all).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "flower_xdp_shared.h"

#define MAX_VLAN_TAGS 2

/* Weak: on a kernel without it, flower_xdp_hwts fails to load and user space
 * falls back to flower_xdp; flower_xdp itself never references it. */
extern int bpf_xdp_metadata_rx_timestamp(const struct xdp_md *ctx, __u64 *timestamp) __ksym __weak;

const volatile struct flower_xdp_config cfg = {};

struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, FLOWER_XDP_MAX_QUEUES);
  __type(key, __u32);
  __type(value, __u32);
} xsks SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct flower_xdp_counters);
} counters SEC(".maps");

struct vlan_tag {
  __be16 tci;
  __be16 proto;
};

/* 1 if the frame passes the IP version / protocol pre-filter. */
static __always_inline int prefilter_matches(void *data, void *data_end)
{
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end)
    return cfg.ip_versions == 0 && !cfg.match_protocols;
  __u16 proto = eth->h_proto;
  void *cursor = eth + 1;
#pragma unroll
  for (int i = 0; i < MAX_VLAN_TAGS; i++) {
    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
      break;
    struct vlan_tag *tag = cursor;
    if ((void *)(tag + 1) > data_end)
      return 0;
    proto = tag->proto;
    cursor = tag + 1;
  }
  __u8 ip_proto;
  if (proto == bpf_htons(ETH_P_IP)) {
    if (cfg.ip_versions && !(cfg.ip_versions & FLOWER_XDP_IPV4))
      return 0;
    struct iphdr *ip = cursor;
    if ((void *)(ip + 1) > data_end)
      return 0;
    ip_proto = ip->protocol;
  } else if (proto == bpf_htons(ETH_P_IPV6)) {
    if (cfg.ip_versions && !(cfg.ip_versions & FLOWER_XDP_IPV6))
      return 0;
    struct ipv6hdr *ip6 = cursor;
    if ((void *)(ip6 + 1) > data_end)
      return 0;
    ip_proto = ip6->nexthdr; /* first next-header only: extension headers not walked */
  } else {
    return cfg.ip_versions == 0 && !cfg.match_protocols; /* not IP */
  }
  if (!cfg.match_protocols)
    return 1;
  return (cfg.protocols[ip_proto >> 3] >> (ip_proto & 7)) & 1;
}

/* The driver's receive time into the metadata area (0 if it has none). */
static __always_inline void stamp(struct xdp_md *ctx, struct flower_xdp_counters *c)
{
  __u64 ts = 0;
  if (bpf_xdp_metadata_rx_timestamp(ctx, &ts) != 0)
    ts = 0;
  if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct flower_xdp_meta)) != 0)
    return;
  struct flower_xdp_meta *m = (void *)(long)ctx->data_meta;
  if ((void *)(m + 1) > (void *)(long)ctx->data)
    return;
  m->rx_timestamp_ns = ts;
  m->reserved = 0;
  m->magic = FLOWER_XDP_META_MAGIC;
  if (ts)
    c->hw_timestamped++;
}

static __always_inline int steer(struct xdp_md *ctx, const int with_timestamp)
{
  __u32 key = 0;
  struct flower_xdp_counters *c = bpf_map_lookup_elem(&counters, &key);
  if (!c)
    return XDP_PASS;
  c->seen++;

  int unmatched = cfg.drop_unmatched ? XDP_DROP : XDP_PASS;
  if (cfg.ip_versions || cfg.match_protocols) {
    if (!prefilter_matches((void *)(long)ctx->data, (void *)(long)ctx->data_end)) {
      c->prefiltered++;
      goto unmatched_out;
    }
  }
  if (cfg.sample_rate > 1 && bpf_get_prandom_u32() % cfg.sample_rate != 0) {
    c->sampled_out++;
    goto unmatched_out;
  }

  if (with_timestamp)
    stamp(ctx, c);
  long action = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
  if (action == XDP_REDIRECT) {
    c->redirected++;
  } else {
    c->no_socket++;
    c->passed++;
  }
  return (int)action;

unmatched_out:
  if (unmatched == XDP_DROP)
    c->dropped++;
  else
    c->passed++;
  return unmatched;
}

SEC("xdp")
int flower_xdp(struct xdp_md *ctx)
{
  return steer(ctx, 0);
}

SEC("xdp")
int flower_xdp_hwts(struct xdp_md *ctx)
{
  return steer(ctx, 1);
}

char LICENSE[] SEC("license") = "GPL";
