#!/usr/bin/env python3
"""The --send-rate sweep of results/talkback: reads one loadgen report per send rate and writes
the crossover chart (sweep.svg) and its table (sweep.md).

Why a script and not loadgen: `--send-rate` takes one value per run (a sweep is several runs), and
the question here is across runs: from what send rate per client does the WebSocket's cheaper way
up matter? Each line is one transport's way up; the y axis is bytes each client wrote to its
sockets per message it sent (subscription traffic included, as a client pays it), against the
WebSocket at the same rate. The crossover is defined, and printed, as the lowest swept rate from
which a way up costs at least CROSSOVER times the WebSocket's bytes per message at that rate and
every higher one.

Usage: scripts/talkback_sweep.py OUT_DIR REPORT_DIR [REPORT_DIR ...]
Standard library only, so CI needs nothing to run it.
"""

import json
import math
import sys
from pathlib import Path

CROSSOVER = 1.5
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def rows(report_dirs):
    out = {}
    for d in report_dirs:
        r = json.loads((Path(d) / "report.json").read_text())
        for p in r["phases"]:
            u = p.get("upstream")
            if not u:
                continue
            rate = u["send_rate"]
            label = p["transport"] if p["transport"] == "ws" else f'{p["transport"]} HTTP/{p["http"]}'
            out.setdefault(label, {}).setdefault(rate, []).append((p, u))
    return out


def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def figure(data, label, rate, f):
    return median([f(p, u) for p, u in data[label].get(rate, [])])


def svg(data, rates, path):
    w, h, left, right, top, bottom = 760, 420, 70, 230, 40, 50
    pw, ph = w - left - right, h - top - bottom
    ys = [
        figure(data, l, r, lambda p, u: u["bytes_up_per_message"])
        for l in data
        for r in rates
    ]
    ys = [y for y in ys if y]
    lo, hi = math.log10(min(rates)), math.log10(max(rates))
    ylo, yhi = math.log10(min(ys) / 1.3), math.log10(max(ys) * 1.3)

    def x(r):
        return left + (math.log10(r) - lo) / ((hi - lo) or 1) * pw

    def y(v):
        return top + ph - (math.log10(v) - ylo) / ((yhi - ylo) or 1) * ph

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14" font-weight="bold">Bytes up per message sent, against send rate per client</text>',
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>',
        f'<text x="{left + pw / 2}" y="{h - 12}" text-anchor="middle">messages/s per client (log)</text>',
        f'<text transform="translate(16,{top + ph / 2}) rotate(-90)" text-anchor="middle">bytes up / message (log)</text>',
    ]
    for r in rates:
        parts.append(f'<text x="{x(r):.1f}" y="{top + ph + 16}" text-anchor="middle">{r:g}</text>')
        parts.append(f'<line x1="{x(r):.1f}" y1="{top + ph}" x2="{x(r):.1f}" y2="{top + ph + 4}" stroke="black"/>')
    e = math.floor(ylo)
    while e <= yhi:
        for m in (1, 2, 5):
            v = m * 10**e
            if ylo <= math.log10(v) <= yhi:
                parts.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + pw}" y2="{y(v):.1f}" stroke="#ddd"/>')
                parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        e += 1
    for i, label in enumerate(sorted(data, key=lambda l: (l != "ws", l))):
        color = COLORS[i % len(COLORS)]
        pts = [
            (x(r), y(v))
            for r in rates
            if (v := figure(data, label, r, lambda p, u: u["bytes_up_per_message"]))
        ]
        dash = "" if label == "ws" or "HTTP/1.1" in label else ' stroke-dasharray="6 4"'
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="'
            + " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
            + '"/>'
        )
        for px, py in pts:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"/>')
        ly = top + 10 + i * 18
        parts.append(f'<line x1="{left + pw + 15}" y1="{ly}" x2="{left + pw + 40}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/>')
        parts.append(f'<text x="{left + pw + 46}" y="{ly + 4}">{label}</text>')
    parts.append("</svg>")
    Path(path).write_text("\n".join(parts) + "\n")


def us(v):
    if v is None:
        return "–"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    data = rows(sys.argv[2:])
    rates = sorted({r for per in data.values() for r in per})
    out.mkdir(parents=True, exist_ok=True)
    svg(data, rates, out / "sweep.svg")
    lines = [
        "| way up | " + " | ".join(f"{r:g}/s" for r in rates) + " | crossover |",
        "|---|" + "---:|" * (len(rates) + 1),
    ]
    for label in sorted(data, key=lambda l: (l != "ws", l)):
        cells = []
        ratios = []
        for r in rates:
            b = figure(data, label, r, lambda p, u: u["bytes_up_per_message"])
            ack = figure(data, label, r, lambda p, u: u["ack_us"]["p50"] if u["ack_us"]["count"] else None)
            ws = figure(data, "ws", r, lambda p, u: u["bytes_up_per_message"]) if "ws" in data else None
            ratio = b / ws if b and ws else None
            ratios.append((r, ratio))
            cells.append(
                "–" if b is None else f"{b:.0f} B" + (f" ({ratio:.2f}×)" if ratio and label != "ws" else "") + f", ack {us(ack)}"
            )
        crossover = "–"
        if label != "ws":
            for i, (r, _) in enumerate(ratios):
                if all(q is not None and q >= CROSSOVER for _, q in ratios[i:]):
                    crossover = f"{r:g}/s"
                    break
            else:
                crossover = "none in the sweep"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {crossover} |")
    note = (
        f"Bytes each client wrote to its sockets per message it sent (median over a rate's runs; "
        f"× the WebSocket's at the same rate), and the p50 send → acknowledgement. Crossover: the "
        f"lowest swept rate from which the way up costs at least {CROSSOVER}× the WebSocket's bytes "
        f"per message at that rate and every higher one.\n"
    )
    (out / "sweep.md").write_text(note + "\n" + "\n".join(lines) + "\n")
    print((out / "sweep.md").read_text())


if __name__ == "__main__":
    main()
