/* flower_xdp_shared.h: the ONE definition of what bpf/flower_xdp.bpf.c and
 * user space (capture/xdp_source.cc) exchange: the pre-filter configuration
 * (read-only data set before load) and the per-CPU counters. Included by the
 * BPF build (clang -target bpf, C) and by C++; fixed-width types only.
 */
#ifndef FLOWER_XDP_SHARED_H
#define FLOWER_XDP_SHARED_H

#ifdef __BPF__
#include <linux/types.h>
typedef __u8 flower_u8;
typedef __u32 flower_u32;
typedef __u64 flower_u64;
#else
#include <stdint.h>
typedef uint8_t flower_u8;
typedef uint32_t flower_u32;
typedef uint64_t flower_u64;
#endif

#ifdef __cplusplus
#define FLOWER_STATIC_ASSERT static_assert
#else
#define FLOWER_STATIC_ASSERT _Static_assert
#endif

/* Names the kernel reports for our programs; how a restart recognises them.
 * flower_xdp_hwts is the same program plus the XDP metadata timestamp: it
 * is loaded device-bound (the kernel allows metadata kfuncs only there) and
 * attached in native mode when the driver takes it. 15 characters at most. */
#define FLOWER_XDP_PROG_NAME "flower_xdp"
#define FLOWER_XDP_HWTS_PROG_NAME "flower_xdp_hwts"
/* Pins live under FLOWER_XDP_PIN_ROOT/<ifname>/{prog,xsks,counters}. */
#define FLOWER_XDP_PIN_ROOT "/sys/fs/bpf/flower"
/* Upper bound on RX queues (XSKMAP size). */
#define FLOWER_XDP_MAX_QUEUES 256

/* Bits of flower_xdp_config.ip_versions; 0 accepts everything, including non-IP. */
#define FLOWER_XDP_IPV4 0x1
#define FLOWER_XDP_IPV6 0x2

struct flower_xdp_config {
  flower_u8 ip_versions;     /* FLOWER_XDP_IPV4 | FLOWER_XDP_IPV6, 0 = all frames */
  flower_u8 match_protocols; /* 1: only IP protocols whose bit is set in protocols[] pass */
  flower_u8 drop_unmatched;  /* 1: XDP_DROP what is filtered/sampled out, 0: XDP_PASS */
  flower_u8 reserved;
  flower_u32 sample_rate;    /* keep 1 in N (bpf_get_prandom_u32); 0 or 1 = all */
  flower_u8 protocols[32];   /* bitmap of IP protocol numbers: bit (p & 7) of byte p >> 3 */
};
FLOWER_STATIC_ASSERT(sizeof(struct flower_xdp_config) == 40, "config layout is shared");

/* Add IP protocol `proto` (0..255) to the set the pre-filter lets through. */
static inline void flower_xdp_config_add_protocol(struct flower_xdp_config *cfg, flower_u8 proto)
{
  cfg->match_protocols = 1;
  cfg->protocols[proto >> 3] |= (flower_u8)(1u << (proto & 7));
}

/* One value per CPU in the PERCPU_ARRAY "counters" (single key 0). */
struct flower_xdp_counters {
  flower_u64 seen;        /* every frame the program ran on */
  flower_u64 redirected;  /* into the AF_XDP socket of its RX queue */
  flower_u64 passed;      /* XDP_PASS to the kernel stack */
  flower_u64 dropped;     /* XDP_DROP (drop_unmatched only) */
  flower_u64 prefiltered; /* subset of passed+dropped: IP version / protocol */
  flower_u64 sampled_out; /* subset of passed+dropped: 1-in-N sampling */
  flower_u64 no_socket;   /* subset of passed: no socket bound on the queue */
  flower_u64 hw_timestamped; /* flower_xdp_hwts: redirected with a non-zero driver timestamp */
};
FLOWER_STATIC_ASSERT(sizeof(struct flower_xdp_counters) == 64, "one cache line per CPU");

/* What flower_xdp_hwts writes in the XDP metadata area, just before the
 * frame's first byte (AF_XDP copies it into the UMEM frame with the packet).
 * User space checks `magic` and clears it when it gives the frame back, so a
 * stale area from an earlier use of the frame is never taken for new data. */
#define FLOWER_XDP_META_MAGIC 0x464c5754u /* "FLWT" */
struct flower_xdp_meta {
  flower_u64 rx_timestamp_ns; /* driver's receive time, 0 = it gave none */
  flower_u32 reserved;
  flower_u32 magic;           /* FLOWER_XDP_META_MAGIC; last, right before the frame */
};
FLOWER_STATIC_ASSERT(sizeof(struct flower_xdp_meta) == 16, "metadata size is a multiple of 4, at most 32");

#endif /* FLOWER_XDP_SHARED_H */
