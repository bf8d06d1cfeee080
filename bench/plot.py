#!/usr/bin/python3
"""Render bench/run.sh's raw results: results.md (tables) and results.svg
(grouped bars). Python standard library only.

  plot.py --csv results.csv --meta meta.txt [--md results.md] [--svg results.svg]

CSV columns (one row per run; see run.sh):
  kind,subject,mode,direction,frame_bytes,run,delivered_pps,offered_pps,
  delivered_pct,cpu_ns_per_pkt,value,unit,note
kind is throughput, paced, idle_cpu, rss, failover or na (note = reason).
"""

import argparse
import csv
import html
import statistics

MODES = ["balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad"]
MODE_NOTE = {
    "balance-xor": "balance-xor (layer3+4)",
    "802.3ad": "802.3ad (layer3+4, OVS partner)",
}
DIRS = [("up", "wire → bond0"), ("down", "bond0 → wire")]
SIZE_TITLE = {"64": "64-byte frames (60 B + FCS)", "1500": "1500-byte frames (IP total length 1500, 1514 B on the wire)"}


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def load(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def load_meta(path):
    meta = {}
    try:
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    meta[k] = v
    except OSError:
        pass
    return meta


def med(xs):
    return statistics.median(xs) if xs else None


def fint(x):
    return "–" if x is None else f"{x:,.0f}"


class Results:
    def __init__(self, rows):
        self.rows = rows
        self.tp = {}   # (subject, mode, dir, size) -> list of rows
        self.na = {}   # (subject, mode) -> reason
        for r in rows:
            if r["kind"] == "throughput":
                key = (r["subject"], r["mode"], r["direction"], r["frame_bytes"])
                self.tp.setdefault(key, []).append(r)
            elif r["kind"] == "na":
                self.na[(r["subject"], r["mode"])] = r["note"]
        self.sizes = sorted({k[3] for k in self.tp}, key=int)
        seen = {k[1] for k in self.tp if k[1] != "-"} | {k[1] for k in self.na}
        self.modes = [m for m in MODES if m in seen]
        self.subjects = {k[0] for k in self.tp} | {k[0] for k in self.na}

    def vals(self, subj, mode, d, size, col="delivered_pps"):
        xs = [num(r[col]) for r in self.tp.get((subj, mode, d, size), [])]
        return [x for x in xs if x is not None]

    def stat(self, subj, mode, d, size, col="delivered_pps"):
        xs = self.vals(subj, mode, d, size, col)
        if not xs:
            return None
        return med(xs), min(xs), max(xs)


def cell_range(st):
    if st is None:
        return None
    m, lo, hi = st
    if len(set((m, lo, hi))) == 1:
        return fint(m)
    return f"{fint(m)} ({fint(lo)}–{fint(hi)})"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}"


def markdown(res, meta):
    out = []
    notes = []  # footnotes for n/a cells

    def na_cell(subj, mode):
        reason = res.na.get((subj, mode))
        if reason is None:
            return "–" if subj not in res.subjects else "n/a"
        if reason not in notes:
            notes.append(reason)
        return f"n/a [{notes.index(reason) + 1}]"

    out.append("# bondd benchmark: throughput, cost, and what it is compared with")
    out.append("")
    out.append(f"- Date: {meta.get('date', '?')}; run took {meta.get('duration_s', '?')} s")
    out.append(f"- Machine: {meta.get('cpu', '?')}, {meta.get('nproc', '?')} CPUs, {meta.get('mem', '?')}; "
               f"kernel {meta.get('kernel', '?')}; {meta.get('os', '?')}")
    out.append(f"- Load average at start / end: {meta.get('load_start', '?')} / {meta.get('load_end', '?')}")
    out.append(f"- Command: `{meta.get('command', '?')}`; RX/TX queues per veth: {meta.get('queues', '1')}")
    out.append(f"- bondd {meta.get('bondd', '?')}; DPDK {meta.get('dpdk', '?')} (testpmd, bonding PMD); "
               f"trafgen {meta.get('trafgen', '?')}; Open vSwitch {meta.get('ovs', '?')}")
    out.append(f"- Each cell: median (min–max) of {meta.get('runs', '?')} runs; each run counts over a "
               f"{meta.get('secs', '?')} s window after 0.5 s of warm-up.")
    out.append("")
    out.append("Topology: namespaces gen and dut, veth pairs g0–s0 and g1–s1 (s0, s1 = the slaves). "
               "trafgen (one process, `-P 1 -q`) on CPU 0 is the generator; the data plane runs on CPU 1 "
               "(bondd pinned with taskset; testpmd's forwarding lcore). "
               "wire → bond0: trafgen into g0 (the active slave's peer), counted at bond0's (DPDK: the "
               "net_tap's) rx_packets. bond0 → wire: trafgen into bond0 / the tap, counted at g0 + g1 "
               "rx_packets. Offered = tx_packets of the device trafgen sends on.")
    out.append("")
    for size in res.sizes:
        out.append(f"## {SIZE_TITLE.get(size, size + '-byte frames')}")
        out.append("")
        out.append("| mode | direction | bondd pps | DPDK pps | XDP-redirect ceiling | generator XDP_DROP limit "
                   "| bondd/DPDK | bondd/ceiling | bondd delivered/offered | bondd CPU ns/pkt | DPDK CPU ns/pkt |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for mode in res.modes or ["-"]:
            for d, dname in DIRS:
                b = res.stat("bondd", mode, d, size)
                p = res.stat("dpdk", mode, d, size)
                c = res.stat("xdp-redirect", "-", d, size)
                g = res.stat("xdp-drop", "-", d, size)
                bpct = res.stat("bondd", mode, d, size, "delivered_pct")
                bcpu = res.stat("bondd", mode, d, size, "cpu_ns_per_pkt")
                pcpu = res.stat("dpdk", mode, d, size, "cpu_ns_per_pkt")
                dn = dname + (" (frames ×2)" if mode == "broadcast" and d == "down" else "")
                out.append("| " + " | ".join([
                    MODE_NOTE.get(mode, mode), dn,
                    cell_range(b) or na_cell("bondd", mode),
                    cell_range(p) or na_cell("dpdk", mode),
                    fint(c[0]) if c else "–",
                    fint(g[0]) if g else "–",
                    ratio(b and b[0], p and p[0]),
                    ratio(b and b[0], c and c[0]),
                    f"{bpct[0]:.0f} %" if bpct else "–",
                    fint(bcpu[0]) if bcpu else "–",
                    fint(pcpu[0]) if pcpu else "–",
                ]) + " |")
        out.append("")
    # bondd at rest, memory, failover
    idle = {r["mode"]: num(r["value"]) for r in res.rows if r["kind"] == "idle_cpu"}
    rss = {r["mode"]: num(r["value"]) for r in res.rows if r["kind"] == "rss"}
    fo = [num(r["value"]) for r in res.rows if r["kind"] == "failover"]
    if idle or rss:
        out.append(f"## bondd idle CPU and memory")
        out.append("")
        out.append(f"| mode | idle CPU (% of one core, {meta.get('idle_secs', '?')} s, bond up, no traffic) "
                   "| RSS after traffic (VmRSS, two slaves) |")
        out.append("|---|---:|---:|")
        for mode in res.modes:
            if mode in idle or mode in rss:
                i = idle.get(mode)
                m = rss.get(mode)
                out.append(f"| {mode} | {'–' if i is None else f'{i:.2f} %'} | "
                           f"{'–' if m is None else f'{m / 1024:.1f} MiB ({m:,.0f} kB)'} |")
        out.append("")
    paced = [r for r in res.rows if r["kind"] == "paced"]
    if paced:
        out.append("## bondd below saturation: loss at 90 % of the saturating rate")
        out.append("")
        out.append("The same path offered a steady 90 % of the median rate bondd delivered above "
                   "(`bdt-udp pace`, one run of the window length).")
        out.append("")
        out.append("| mode | direction | frame | saturating (median) | offered | delivered | loss |")
        out.append("|---|---|---:|---:|---:|---:|---:|")
        for r in paced:
            sat = (r.get("note") or "").replace("saturating=", "")
            loss = num(r["value"])
            dname = dict(DIRS).get(r["direction"], r["direction"])
            out.append(f"| {r['mode']} | {dname} | {r['frame_bytes']} B | {fint(num(sat))} | "
                       f"{fint(num(r['offered_pps']))} | {fint(num(r['delivered_pps']))} | "
                       f"{'–' if loss is None else f'{loss:.2f} %'} |")
        out.append("")
    if any(r["kind"] == "failover" for r in res.rows):
        out.append("## bondd active-backup failover under load")
        out.append("")
        good = [x for x in fo if x is not None]
        runs = ", ".join("?" if x is None else f"{x:g}" for x in fo)
        if good:
            out.append(f"bdt-udp stream at 50 kpps gen → bond0 (through a bridge in gen for this part), the "
                       f"active slave's far end g0 set down 1.5 s in: loss window **{med(good):g} ms** "
                       f"median (runs: {runs} ms).")
        else:
            out.append(f"Failover runs produced no loss-window figure (runs: {runs}).")
        out.append("")
    if notes:
        out.append("## n/a")
        out.append("")
        for i, n in enumerate(notes, 1):
            out.append(f"{i}. {n}")
        out.append("")
    out.append("## How to read it")
    out.append("")
    out.append("- Ceilings use no bonding logic at all: *generator XDP_DROP limit* is trafgen into a veth "
               "whose peer drops every frame in XDP (what the generator can offer); *XDP-redirect ceiling* "
               "is an XDP program on s0 redirecting every frame to a plain veth standing in for bond0 "
               "(and back: the stand-in's far end redirecting to s0). Both run entirely in the softirq of "
               "the generator's CPU.")
    out.append("- CPU ns/pkt: CPU time of every thread of the process (schedstat) over the window, per "
               "delivered packet. It includes kernel work done in the process's context (AF_XDP copy-mode "
               "transmit, the receiving stack's softirq). testpmd busy-polls, so its figure is ~1 s of CPU "
               "per second divided by the packet rate.")
    out.append("- DPDK uses af_packet slaves in modes 0–3 (af_xdp slaves cannot take the slave MAC changes "
               "those modes need in DPDK 22.11) and af_xdp slaves in mode 4; bond0 is a net_tap, which moves "
               "one frame per read()/write() syscall. In 802.3ad a 50 pps trickle into the tap keeps DPDK's "
               "LACP alive; Open vSwitch (userspace datapath, pinned to CPU 0) is the partner for both.")
    out.append("- broadcast bond0 → wire counts each frame on both slaves (delivered ≈ 2 × offered).")
    out.append("")
    return "\n".join(out)


def nice_max(v):
    if v <= 0:
        return 1.0
    import math
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * e >= v:
            return m * e
    return 10 * e


def svg(res):
    series = [("bondd", "bondd", "#1f77b4"), ("dpdk", "DPDK testpmd bonding", "#ff7f0e"),
              ("xdp-redirect", "XDP-redirect ceiling", "#7f7f7f")]
    groups = [(m, d, dn) for m in res.modes for d, dn in DIRS]
    if not groups:  # ceilings only
        groups = [("-", d, dn) for d, dn in DIRS]
    bar_w, gap = 20, 34
    group_w = bar_w * len(series) + gap
    left, right, top = 80, 20, 60
    panel_h, label_h = 260, 70
    width = max(900, left + right + group_w * len(groups))
    group_w = (width - left - right) / len(groups)
    height = top + len(res.sizes) * (panel_h + label_h + 40) + 10
    e = []
    a = e.append
    a(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
      f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">')
    a(f'<rect width="{width}" height="{height}" fill="white"/>')
    a(f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">'
      'Delivered packets per second (bars: median; whiskers: min–max of the runs)</text>')
    # legend
    lx = left
    present = {k[0] for k in res.tp} | {k[0] for k in res.na}
    for s, name, color in series:
        if s not in present:
            continue
        a(f'<rect x="{lx}" y="30" width="12" height="12" fill="{color}"/>')
        a(f'<text x="{lx + 16}" y="40">{html.escape(name)}</text>')
        lx += 30 + 7 * len(name)
    if "xdp-drop" in present:
        a(f'<line x1="{lx}" y1="36" x2="{lx + 20}" y2="36" stroke="black" stroke-dasharray="4,2"/>')
        a(f'<text x="{lx + 24}" y="40">generator limit (into XDP_DROP)</text>')
    y0 = top
    for size in res.sizes:
        vmax = 0.0
        for m, d, _ in groups:
            for s, _, _ in series:
                mm = "-" if s == "xdp-redirect" else m
                xs = res.vals(s, mm, d, size)
                if xs:
                    vmax = max(vmax, max(xs))
            g = res.stat("xdp-drop", "-", d, size)
            if g:
                vmax = max(vmax, g[0])
        ymax = nice_max(vmax * 1.05)
        base = y0 + 20 + panel_h

        def y(v):
            return base - panel_h * v / ymax

        a(f'<text x="{width / 2}" y="{y0 + 12}" text-anchor="middle" font-size="13" font-weight="bold">'
          f'{html.escape(SIZE_TITLE.get(size, size))}</text>')
        for i in range(6):
            v = ymax * i / 5
            yy = y(v)
            a(f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" stroke="#ddd"/>')
            a(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{v / 1000:,.0f}k</text>')
        a(f'<text x="18" y="{base - panel_h / 2}" text-anchor="middle" '
          f'transform="rotate(-90 18 {base - panel_h / 2})">packets per second</text>')
        a(f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="black"/>')
        a(f'<line x1="{left}" y1="{base}" x2="{left}" y2="{base - panel_h}" stroke="black"/>')
        for gi, (m, d, dn) in enumerate(groups):
            gx = left + gi * group_w + (group_w - bar_w * len(series)) / 2
            for si, (s, name, color) in enumerate(series):
                mm = "-" if s == "xdp-redirect" else m
                st = res.stat(s, mm, d, size)
                x = gx + si * bar_w
                if st is None:
                    if (s, m) in res.na:
                        a(f'<text x="{x + bar_w / 2}" y="{base - 4}" text-anchor="middle" font-size="8" '
                          f'fill="{color}">n/a</text>')
                    continue
                md, lo, hi = st
                a(f'<rect x="{x:.1f}" y="{y(md):.1f}" width="{bar_w - 2}" height="{base - y(md):.1f}" '
                  f'fill="{color}"><title>{html.escape(name)} {m} {dn}: {md:,.0f} pps '
                  f'({lo:,.0f}–{hi:,.0f})</title></rect>')
                if hi > lo:
                    cx = x + (bar_w - 2) / 2
                    a(f'<line x1="{cx:.1f}" y1="{y(lo):.1f}" x2="{cx:.1f}" y2="{y(hi):.1f}" stroke="black"/>')
                    for v in (lo, hi):
                        a(f'<line x1="{cx - 3:.1f}" y1="{y(v):.1f}" x2="{cx + 3:.1f}" y2="{y(v):.1f}" '
                          'stroke="black"/>')
            g = res.stat("xdp-drop", "-", d, size)
            if g:
                a(f'<line x1="{gx - 3:.1f}" y1="{y(g[0]):.1f}" x2="{gx + bar_w * len(series) + 1:.1f}" '
                  f'y2="{y(g[0]):.1f}" stroke="black" stroke-dasharray="4,2"/>')
            cx = gx + bar_w * len(series) / 2
            a(f'<text x="{cx:.1f}" y="{base + 14}" text-anchor="middle">{html.escape(m if m != "-" else "")}</text>')
            short = dn.replace(" → ", "→") + (" (×2)" if m == "broadcast" and d == "down" else "")
            a(f'<text x="{cx:.1f}" y="{base + 27}" text-anchor="middle" font-size="10">{html.escape(short)}</text>')
        a(f'<text x="{left + (width - left - right) / 2}" y="{base + 48}" text-anchor="middle">'
          'bonding mode and direction</text>')
        y0 = base + label_h
    a("</svg>")
    return "\n".join(e) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--meta", default="")
    ap.add_argument("--md")
    ap.add_argument("--svg")
    args = ap.parse_args()
    res = Results(load(args.csv))
    meta = load_meta(args.meta) if args.meta else {}
    # What was asked for, so that cells which produced nothing still show.
    if meta.get("sizes"):
        res.sizes = sorted(set(res.sizes) | set(meta["sizes"].split(",")), key=int)
    if meta.get("modes"):
        asked = set(meta["modes"].split(","))
        res.modes = [m for m in MODES if m in asked or m in res.modes]
    if meta.get("subjects"):
        for s in meta["subjects"].split(","):
            res.subjects |= {"xdp-redirect", "xdp-drop"} if s == "ceiling" else {s}
    if args.md:
        with open(args.md, "w") as f:
            f.write(markdown(res, meta))
    if args.svg:
        with open(args.svg, "w") as f:
            f.write(svg(res))


if __name__ == "__main__":
    main()
