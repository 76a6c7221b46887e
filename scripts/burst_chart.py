#!/usr/bin/env python3
"""The burst benchmark as a chart: activations per second (UpdateCertificate
calls AWS IoT's quota let through) and throttled calls per second (every
operation), over the seconds since the fleet powered on, with the binding
limit as a line. Reads the timeline `make bench-burst` writes
(tests/tests/burst.rs, BURST_TIMELINE: the proxy's GET /__proxy/timeline)
and writes a self-contained SVG (no plotting library needed):

    burst_chart.py TIMELINE.json OUT.svg [--limit 10] [--title TEXT]
"""
import argparse
import json
import sys

WIDTH, HEIGHT = 760, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 36, 44


def series(timeline):
    """(seconds since start, activations, throttled) per second, gaps as 0."""
    start = timeline["started_at"]
    seconds = {int(s): ops for s, ops in timeline["seconds"].items()}
    if not seconds:
        return []
    first, last = int(start), max(seconds)
    rows = []
    for s in range(first, last + 1):
        ops = seconds.get(s, {})
        activations = ops.get("UpdateCertificate", {}).get("passed", 0)
        throttled = sum(o.get("throttled", 0) for o in ops.values())
        rows.append((s - first, activations, throttled))
    return rows


def svg(rows, limit, title):
    t_max = max((r[0] for r in rows), default=1) or 1
    y_max = max([limit * 1.25] + [max(r[1], r[2]) for r in rows])
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t):
        return LEFT + pw * t / t_max

    def y(v):
        return TOP + ph * (1 - v / y_max)

    def line(index, colour):
        points = " ".join(f"{x(r[0]):.1f},{y(r[index]):.1f}" for r in rows)
        return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>'

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="20" font-size="14">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{TOP + ph}" x2="{LEFT + pw}" y2="{TOP + ph}" stroke="black"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + ph}" stroke="black"/>',
    ]
    for i in range(5):
        v = y_max * i / 4
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>')
        t = t_max * i / 4
        out.append(f'<text x="{x(t):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{t:.0f}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{HEIGHT - 8}" text-anchor="middle">seconds since the fleet powered on</text>')
    out.append(f'<text x="14" y="{TOP + ph / 2}" transform="rotate(-90 14 {TOP + ph / 2})" text-anchor="middle">calls per second</text>')
    out.append(f'<line x1="{LEFT}" y1="{y(limit):.1f}" x2="{LEFT + pw}" y2="{y(limit):.1f}" stroke="grey" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{LEFT + pw - 4}" y="{y(limit) - 4:.1f}" text-anchor="end" fill="grey">binding limit {limit:g}/s</text>')
    out.append(line(1, "#1f77b4"))
    out.append(line(2, "#d62728"))
    out.append(f'<text x="{LEFT + 8}" y="{TOP + 12}" fill="#1f77b4">activations/s (UpdateCertificate passed)</text>')
    out.append(f'<text x="{LEFT + 8}" y="{TOP + 28}" fill="#d62728">throttled calls/s (all operations)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("timeline")
    p.add_argument("out")
    p.add_argument("--limit", type=float, default=10.0, help="the binding limit, calls/s")
    p.add_argument("--title", default=None)
    a = p.parse_args()
    try:
        with open(a.timeline) as f:
            timeline = json.load(f)
        rows = series(timeline)
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"burst_chart: {a.timeline}: not a burst timeline ({e})")
    if not rows:
        sys.exit(f"burst_chart: {a.timeline}: no calls in the timeline")
    title = a.title or (
        f"{timeline.get('devices', '?')} devices power on at once, "
        f"MaxConcurrency {timeline.get('max_concurrency', '?')}"
    )
    with open(a.out, "w") as f:
        f.write(svg(rows, a.limit, title))
    print(f"burst_chart: {a.out}: {len(rows)} s, {sum(r[1] for r in rows)} activations, "
          f"{sum(r[2] for r in rows)} throttled calls")


if __name__ == "__main__":
    main()
