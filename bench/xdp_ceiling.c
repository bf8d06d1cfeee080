// SPDX-License-Identifier: MIT OR GPL-2.0-only
/* Ceiling programs for bench/run.sh: the least an in-kernel data path can do.
 *
 *   xdp_drop      drop every frame (the generator's own limit)
 *   xdp_pass      pass every frame; attached to the peer of a veth that
 *                 XDP_REDIRECT transmits into, so that veth runs NAPI
 *   xdp_redir_up  redirect every frame to ifindex IFX_UP
 *                 (slave -> far end of the stand-in bond0)
 *   xdp_redir_dn  redirect every frame to ifindex IFX_DN
 *                 (far end of the stand-in bond0 -> slave)
 *
 * Build (run.sh does this once the interfaces exist):
 *   clang-19 -O2 -target bpf -I/usr/include/x86_64-linux-gnu \
 *     -DIFX_UP=<ifindex> -DIFX_DN=<ifindex> -c xdp_ceiling.c -o xdp_ceiling.o
 * Attach: ip link set dev X xdpdrv obj xdp_ceiling.o sec xdp program NAME
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef IFX_UP
#define IFX_UP 0
#endif
#ifndef IFX_DN
#define IFX_DN 0
#endif

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_redir_up(struct xdp_md *ctx)
{
	return bpf_redirect(IFX_UP, 0);
}

SEC("xdp")
int xdp_redir_dn(struct xdp_md *ctx)
{
	return bpf_redirect(IFX_DN, 0);
}

char _license[] SEC("license") = "Dual MIT/GPL";
