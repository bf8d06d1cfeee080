// SPDX-License-Identifier: MIT OR GPL-2.0-only
/*
 * bondd's XDP program, attached to every slave NIC and to the far end of the
 * logical interface. It steers frames into the AF_XDP socket of their rx
 * queue, drops early what this port must not deliver (the inactive slave of
 * an active-backup bond), and always lets slow-protocol frames (LACP,
 * marker, EtherType 0x8809) through to bondd whatever the port's state.
 *
 * One copy of the program (with its own maps) is loaded per interface, so
 * the maps need no interface key.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_SLOW 0x8809
#define MAX_QUEUES 64

/* cfg[0].flags bits, written by bondd's control plane. */
#define CFG_DELIVER 0x1 /* data frames may reach bondd from this port */

/* Counter indexes; keep in step with XdpCounter in daemon/xdp/src/program.rs. */
enum {
	CNT_REDIRECTED = 0,
	CNT_SLOW_PROTO = 1,
	CNT_DROP_INACTIVE = 2,
	CNT_DROP_NO_SOCKET = 3,
	CNT_DROP_RUNT = 4,
	CNT_MAX = 8,
};

struct port_cfg {
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct port_cfg);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		*c += 1;
}

SEC("xdp")
int bondd_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 zero = 0;
	__u32 qid = ctx->rx_queue_index;
	int slow;

	if ((void *)(eth + 1) > data_end) {
		count(CNT_DROP_RUNT);
		return XDP_DROP;
	}
	slow = eth->h_proto == bpf_htons(ETH_P_SLOW);
	if (!slow) {
		struct port_cfg *c = bpf_map_lookup_elem(&cfg, &zero);
		if (!c || !(c->flags & CFG_DELIVER)) {
			count(CNT_DROP_INACTIVE);
			return XDP_DROP;
		}
	}
	if (!bpf_map_lookup_elem(&xsks, &qid)) {
		count(CNT_DROP_NO_SOCKET);
		return XDP_DROP;
	}
	count(slow ? CNT_SLOW_PROTO : CNT_REDIRECTED);
	return bpf_redirect_map(&xsks, qid, XDP_DROP);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
