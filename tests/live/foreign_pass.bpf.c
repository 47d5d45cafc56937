// SPDX-License-Identifier: GPL-2.0
// An XDP program that is NOT flower's: the restart test attaches it and
// checks that flower-sensor refuses to replace it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int someone_elses(struct xdp_md *ctx) { return XDP_PASS; }

char LICENSE[] SEC("license") = "GPL";
