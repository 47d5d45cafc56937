// SPDX-License-Identifier: GPL-2.0
/* flower_blast: the benchmark sender's frame stamper. Never attached to a
 * device: flower-send runs it with BPF_PROG_RUN in live-frames mode
 * (BPF_F_TEST_XDP_LIVE_FRAMES, kernel >= 5.18) on one pre-built 64-byte IPv4
 * UDP frame, `repeat` times per call. Each run rewrites the UDP source port
 * so consecutive frames cycle through `flows` flows, and returns XDP_TX:
 * the kernel turns that into a redirect out of the ingress_ifindex given in
 * the context, i.e. ndo_xdp_xmit on the veth, straight into its peer.
 *
 * The UDP checksum is set to 0 (allowed for IPv4); the IP header does not
 * cover ports, so its checksum stays valid.
 *
 * Pacing: a BPF_PROG_RUN call costs an RCU grace period (~30 ms, a sleep) to
 * tear its page pool down, so paced runs are ONE long call and the program
 * itself holds each frame until it is due (gap_ps apart, spinning on
 * bpf_ktime_get_ns in bpf_loop). Frames still leave in kernel batches
 * (batch_size), so the pacing granularity is one batch.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __u32 flows = 8192;      /* distinct source ports, >= 1 */
const volatile __u16 first_port = 10000;
const volatile __u64 gap_ps = 0;        /* picoseconds between frames; 0 = unpaced */

#define MAX_SPIN_LOOPS (1 << 22)

__u64 stamped = 0;     /* frames stamped so far (one sender thread) */
__u64 malformed = 0;   /* frames too short to be IPv4/UDP: sent unchanged */
__u64 start_ns = 0;    /* ktime of the first paced frame */

static long spin_until(__u64 index, void *ctx)
{
  return bpf_ktime_get_ns() >= *(__u64 *)ctx ? 1 : 0;
}

SEC("xdp")
int flower_blast(struct xdp_md *ctx)
{
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  struct iphdr *ip = (void *)(eth + 1);
  struct udphdr *udp = (void *)(ip + 1);
  if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != 17 /* UDP */) {
    malformed++;
    return XDP_TX;
  }
  __u64 n = stamped++;
  if (gap_ps) {
    if (n == 0)
      start_ns = bpf_ktime_get_ns();
    __u64 due = start_ns + n * gap_ps / 1000;
    bpf_loop(MAX_SPIN_LOOPS, spin_until, &due, 0);
  }
  udp->source = bpf_htons((__u16)(first_port + (__u32)(n % (flows ? flows : 1))));
  udp->check = 0;
  return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
