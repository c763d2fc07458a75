"""The report's three plots as SVG: timeline, latency and throughput, with fault windows shaded.

A reader must see at a glance whether failures and unknown outcomes cluster in
the fault windows; so every plot shares the same time axis and the same shading.
"""

from __future__ import annotations

import math
from typing import Any

from harness.report.bounded import MAX_SVG_POINTS
from harness.report.ops import Completed, fault_windows, pair_ops, run_seconds
from harness.report.svg import COLORS, Frame, Svg

__all__ = ["timeline_svg", "latency_svg", "throughput_svg"]

WIDTH = 1000
MAX_LANES = 40
_LEGEND = [(COLORS["ok"], "ok"), (COLORS["fail"], "fail"), (COLORS["info"], "info (unknown)"),
           (COLORS["fault"], "fault window")]


def _sample(ops: list[Completed], limit: int) -> tuple[list[Completed], str]:
    """At most `limit` ops: every fail and info kept, ok ops thinned evenly."""
    if len(ops) <= limit:
        return ops, ""
    rare = [o for o in ops if o.type != "ok"][:limit]
    oks = [o for o in ops if o.type == "ok"]
    room = max(limit - len(rare), 0)
    step = max(math.ceil(len(oks) / room), 1) if room else len(oks) + 1
    kept = sorted(rare + oks[::step][:room], key=lambda o: o.invoke_index)
    return kept, f"showing {len(kept)} of {len(ops)} operations (every fail/info kept, ok thinned)"


def _frame(height: int, t_max: float, title: str, note: str, left: int = 70) -> Frame:
    svg = Svg(WIDTH, height)
    svg.text(10, 16, title, size=14, bold=True)
    if note:
        svg.text(WIDTH - 10, 16, note, size=10, anchor="end", color="#666666")
    return Frame(svg, left=left, top=58, right=20, bottom=60, t_max=t_max)


def timeline_svg(history: list[dict[str, Any]], schedule: dict[str, Any] | None = None) -> str:
    """Each operation as a bar on its client's lane from invoke to completion, coloured by outcome."""
    ops, note = _sample(pair_ops(history), MAX_SVG_POINTS)
    procs: list[Any] = []
    for o in ops:
        if o.process not in procs:
            procs.append(o.process)
    lanes = min(max(len(procs), 1), MAX_LANES)
    if len(procs) > MAX_LANES:
        note = "; ".join(filter(None, [note, f"{len(procs)} processes folded into {lanes} lanes"]))
    lane_of = {p: i % lanes for i, p in enumerate(procs)}
    lane_h = max(6, min(18, 420 // lanes))
    t_max = run_seconds(history, schedule)
    fr = _frame(58 + lanes * lane_h + 60, t_max, "Operations over time", note)
    fr.fault_windows(fault_windows(history, schedule))
    fr.time_axis()
    if len(procs) <= 20:
        for p, i in lane_of.items():
            fr.svg.text(fr.left - 6, fr.top + i * lane_h + lane_h * 0.75, f"p{p}", size=9,
                        anchor="end")
    fr.svg.text(14, fr.top + fr.plot_h / 2, "client process", size=11, anchor="middle",
                rotate=True)
    for o in ops:
        y = fr.top + lane_of[o.process] * lane_h + 1
        x1, x2 = fr.x(o.start), fr.x(o.end)
        tip = f"{o.type} {o.f} {o.payment or ''} p{o.process} {o.start:.3f}s +{o.latency * 1000:.0f}ms"
        if o.error:
            tip += f" ({o.error})"
        fr.svg.rect(x1, y, max(x2 - x1, 1.5), lane_h - 2, COLORS[o.type], title=tip)
    if not ops:
        fr.svg.text(fr.left + fr.plot_w / 2, fr.top + fr.plot_h / 2, "no client operations",
                    anchor="middle")
    fr.legend(_LEGEND)
    return fr.svg.render()


def latency_svg(history: list[dict[str, Any]], schedule: dict[str, Any] | None = None) -> str:
    """Latency of each operation (log scale) at its invoke time, coloured by outcome."""
    ops, note = _sample(pair_ops(history), MAX_SVG_POINTS)
    t_max = run_seconds(history, schedule)
    fr = _frame(340, t_max, "Latency (ms, log scale)", note)
    fr.fault_windows(fault_windows(history, schedule))
    fr.time_axis("invoke time since start (s)")
    lat_ms = [max(o.latency * 1000, 0.1) for o in ops]
    lo = 0.1 if any(v < 1 for v in lat_ms) else 1.0
    hi = 10 ** math.ceil(math.log10(max(lat_ms, default=1000) + 1e-9))
    hi = max(hi, lo * 100)
    span = math.log10(hi) - math.log10(lo)

    def y(ms: float) -> float:
        return fr.top + fr.plot_h * (1 - (math.log10(max(ms, lo)) - math.log10(lo)) / span)

    decade = lo
    while decade <= hi * 1.0001:
        fr.svg.line(fr.left, y(decade), fr.left + fr.plot_w, y(decade), COLORS["grid"])
        fr.svg.text(fr.left - 6, y(decade) + 4, f"{decade:g}", size=10, anchor="end")
        decade *= 10
    for o, ms in zip(ops, lat_ms):
        fr.svg.circle(fr.x(o.start), y(ms), 2, COLORS[o.type],
                      title=f"{o.type} {o.f} {o.payment or ''} {ms:.1f} ms")
    fr.legend(_LEGEND)
    return fr.svg.render()


def throughput_svg(history: list[dict[str, Any]], schedule: dict[str, Any] | None = None) -> str:
    """Completions per second, one line per outcome."""
    ops = pair_ops(history)
    t_max = run_seconds(history, schedule)
    buckets = max(1, min(200, math.ceil(t_max)))
    width_s = t_max / buckets
    counts = {k: [0] * buckets for k in ("ok", "fail", "info")}
    for o in ops:
        counts[o.type][min(int(o.end / width_s), buckets - 1)] += 1
    peak = max((c / width_s for series in counts.values() for c in series), default=1) or 1
    fr = _frame(300, t_max, f"Throughput (completions/s, {width_s:.2g} s buckets)", "")
    fr.fault_windows(fault_windows(history, schedule))
    fr.time_axis("completion time (s)")

    def y(rate: float) -> float:
        return fr.top + fr.plot_h * (1 - rate / (peak * 1.1))

    for tick in (0, peak / 2, peak):
        fr.svg.line(fr.left, y(tick), fr.left + fr.plot_w, y(tick), COLORS["grid"])
        fr.svg.text(fr.left - 6, y(tick) + 4, f"{tick:.3g}", size=10, anchor="end")
    for kind, series in counts.items():
        if any(series):
            fr.svg.polyline([(fr.x((i + 0.5) * width_s), y(c / width_s))
                             for i, c in enumerate(series)], COLORS[kind])
    fr.legend(_LEGEND)
    return fr.svg.render()
