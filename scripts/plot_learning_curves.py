#!/usr/bin/env python3
"""Draws docs/learning_curves.csv (from scripts/learning_curves.sh) as docs/learning_curves.svg:
test AUROC against training rows (log scale), the mean of the seeds with their range, next to the
composition + random-forest peer: its curve measured on the same subsample sizes and seeds
(docs/peer_learning_curves.csv, from scripts/peer_composition_rf.py --curve --dipeptides) and the
figures issue 4 quotes (squares). Standard library only.

Usage: scripts/plot_learning_curves.py [CSV] [SVG] [PEER_CSV]
"""
import csv
import math
import sys
from collections import defaultdict

CSV = sys.argv[1] if len(sys.argv) > 1 else "docs/learning_curves.csv"
SVG = sys.argv[2] if len(sys.argv) > 2 else "docs/learning_curves.svg"
PEER_CSV = sys.argv[3] if len(sys.argv) > 3 else "docs/peer_learning_curves.csv"
# the peer's test AUROC at n = 100, 500 and all training rows (issue 4)
PEER = {"amp": {100: 0.843, 500: 0.912, "all": 0.964}, "toxicity": {100: 0.943, 500: 0.958, "all": 0.982}}
TASKS = ["amp", "toxicity"]

runs = defaultdict(list)  # (task, n) -> [auroc]
peer_runs = defaultdict(list)  # the same for the peer
all_rows = {}
try:
    for row in csv.DictReader(open(PEER_CSV)):
        peer_runs[(row["task"], row["n"])].append(float(row["test_auroc"]))
except FileNotFoundError:
    pass
for row in csv.DictReader(open(CSV)):
    # the x axis is the rows asked for (n); "all" is the whole training file
    n = row["n"]
    if n == "all":
        all_rows[row["task"]] = int(row["train_rows"]) + round(int(row["train_rows"]) / 9)
        n = "all"
    runs[(row["task"], n)].append(float(row["test_auroc"]))


def x_of(task, n):
    return all_rows.get(task, 5000) if n == "all" else int(n)


W, H, PAD_L, PAD_R, PAD_T, PAD_B, GAP = 900, 380, 60, 20, 40, 50, 60
panel_w = (W - PAD_L - PAD_R - GAP) / 2
y_lo, y_hi = 0.75, 1.00
x_lo, x_hi = math.log10(40), math.log10(8000)
out = [
    f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
    f'<rect width="{W}" height="{H}" fill="white"/>',
]
for p, task in enumerate(TASKS):
    left = PAD_L + p * (panel_w + GAP)

    def px(n):
        return left + (math.log10(n) - x_lo) / (x_hi - x_lo) * panel_w

    def py(v):
        v = min(max(v, y_lo), y_hi)
        return PAD_T + (y_hi - v) / (y_hi - y_lo) * (H - PAD_T - PAD_B)

    bottom = H - PAD_B
    out.append(f'<text x="{left + panel_w / 2}" y="22" text-anchor="middle" font-size="14">{task}</text>')
    out.append(f'<rect x="{left}" y="{PAD_T}" width="{panel_w}" height="{bottom - PAD_T}" fill="none" stroke="#888"/>')
    for tick in [0.75, 0.80, 0.85, 0.90, 0.95, 1.00]:
        out.append(f'<line x1="{left}" x2="{left + panel_w}" y1="{py(tick)}" y2="{py(tick)}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{py(tick) + 4}" text-anchor="end">{tick:.2f}</text>')
    for tick in [50, 100, 250, 500, 1000, 2500, 5000]:
        out.append(f'<line x1="{px(tick)}" x2="{px(tick)}" y1="{bottom}" y2="{bottom + 4}" stroke="#888"/>')
        out.append(f'<text x="{px(tick)}" y="{bottom + 17}" text-anchor="middle">{tick}</text>')
    out.append(f'<text x="{left + panel_w / 2}" y="{H - 10}" text-anchor="middle">training rows (log scale)</text>')
    if p == 0:
        out.append(f'<text x="16" y="{(PAD_T + bottom) / 2}" text-anchor="middle" '
                   f'transform="rotate(-90 16 {(PAD_T + bottom) / 2})">test AUROC</text>')

    points = sorted(((x_of(task, n), v) for (t, n), v in runs.items() if t == task), key=lambda q: q[0])
    for x, values in points:  # the seeds' range
        out.append(f'<line x1="{px(x)}" x2="{px(x)}" y1="{py(min(values))}" y2="{py(max(values))}" '
                   f'stroke="#1f77b4" stroke-width="2"/>')
        for v in values:
            out.append(f'<circle cx="{px(x)}" cy="{py(v)}" r="2" fill="#1f77b4" opacity="0.5"/>')
    mean_path = " ".join(f"{px(x):.1f},{py(sum(v) / len(v)):.1f}" for x, v in points)
    out.append(f'<polyline points="{mean_path}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    measured = sorted(
        ((x_of(task, n), sum(v) / len(v)) for (t, n), v in peer_runs.items() if t == task), key=lambda q: q[0]
    )
    peer_path = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in measured)
    out.append(f'<polyline points="{peer_path}" fill="none" stroke="#d62728" stroke-width="2" stroke-dasharray="6 4"/>')
    for x, v in sorted((x_of(task, n), v) for n, v in PEER[task].items()):
        out.append(f'<rect x="{px(x) - 3}" y="{py(v) - 3}" width="6" height="6" fill="#d62728"/>')
    legend_y, legend_x = bottom - 40, left + panel_w * 0.26
    out.append(f'<line x1="{legend_x}" x2="{legend_x + 28}" y1="{legend_y}" y2="{legend_y}" stroke="#1f77b4" stroke-width="2"/>')
    out.append(f'<text x="{legend_x + 34}" y="{legend_y + 4}">r2dl (mean of 3 seeds, range)</text>')
    out.append(f'<line x1="{legend_x}" x2="{legend_x + 28}" y1="{legend_y + 18}" y2="{legend_y + 18}" '
               f'stroke="#d62728" stroke-width="2" stroke-dasharray="6 4"/>')
    out.append(f'<text x="{legend_x + 34}" y="{legend_y + 22}">peer: composition + RF (squares: issue 4)</text>')
out.append("</svg>")
open(SVG, "w").write("\n".join(out) + "\n")

# the table for BENCHMARKS.md
sizes = ["50", "100", "250", "500", "1000", "all"]
print("| task | " + " | ".join(f"n={s}" for s in sizes) + " |")
print("|---|" + "---|" * len(sizes))
for task in TASKS:
    cells = []
    for s in sizes:
        v = runs.get((task, s), [])
        cells.append(f"{sum(v) / len(v):.3f} ({min(v):.3f}–{max(v):.3f})" if v else "–")
    print(f"| {task}, r2dl | " + " | ".join(cells) + " |")
    cells = []
    for s in sizes:
        v = peer_runs.get((task, s), [])
        cells.append(f"{sum(v) / len(v):.3f}" if v else "–")
    print(f"| {task}, peer | " + " | ".join(cells) + " |")
