"""The SVG plots: well-formed, outcomes told apart, fault windows shaded, sizes bounded."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.report.bounded import MAX_SVG_POINTS
from harness.report.ops import fault_windows, pair_ops
from harness.report.plots import latency_svg, throughput_svg, timeline_svg
from harness.report.rundir import load_run
from harness.report.svg import COLORS

SVG_NS = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _fills(root: ET.Element, tag: str) -> list[str]:
    return [e.get("fill", "") for e in root.iter(f"{SVG_NS}{tag}")]


def test_pairing_follows_jepsen_semantics() -> None:
    history = [
        {"index": 0, "time": 0, "process": 0, "type": "invoke", "f": "transfer", "value": {"id": "p1"}},
        {"index": 1, "time": 10, "process": 1, "type": "invoke", "f": "transfer", "value": {"id": "p2"}},
        {"index": 2, "time": 20, "process": 0, "type": "ok", "f": "transfer", "value": {"id": "p1"}},
        {"index": 3, "time": 30, "process": 2, "type": "invoke", "f": "transfer", "value": {"id": "p3"}},
        {"index": 4, "time": 40, "process": 2, "type": "fail", "f": "transfer", "value": {"id": "p3"}},
    ]
    ops = {o.payment: o for o in pair_ops(history)}
    assert ops["p1"].type == "ok" and ops["p3"].type == "fail"
    assert ops["p2"].type == "info"  # never completed: unknown, not failed
    assert ops["p2"].complete_index is None


def test_fault_windows_from_history_then_schedule() -> None:
    v = {"fault": "partition", "targets": ["ledger"], "params": {}}
    history = [{"index": 0, "time": 1_000_000_000, "process": "nemesis", "type": "info", "f": "start", "value": v},
               {"index": 1, "time": 3_000_000_000, "process": "nemesis", "type": "info", "f": "stop", "value": v}]
    assert fault_windows(history) == [(1.0, 3.0, "partition ledger")]
    # a start never stopped lasts to the end of the run
    open_only = history[:1] + [{"index": 1, "time": 5_000_000_000, "process": 0, "type": "invoke",
                                "f": "read", "value": None}]
    assert fault_windows(open_only) == [(1.0, 5.0, "partition ledger")]
    sched = {"events": [{"at": 2, "duration": 1.5, "fault": "kill", "targets": ["accounts-a"]}]}
    assert fault_windows([], sched) == [(2.0, 3.5, "kill accounts-a")]


def test_timeline_tells_outcomes_apart_and_shades_faults(violated_run_dir: Path) -> None:
    run = load_run(violated_run_dir)
    root = _parse(timeline_svg(run.history, run.schedule))
    fills = _fills(root, "rect")
    for kind in ("ok", "fail", "info"):
        assert COLORS[kind] in fills, kind
    shaded = [e for e in root.iter(f"{SVG_NS}rect") if e.get("fill") == COLORS["fault"]
              and e.get("fill-opacity")]
    assert len(shaded) == 2
    labels = [t.text for t in root.iter(f"{SVG_NS}text")]
    assert "partition accounts-b" in labels and "latency ledger" in labels
    bars = [f for f in fills if f in (COLORS["ok"], COLORS["fail"], COLORS["info"])]
    assert len(bars) == len(pair_ops(run.history)) + 3  # plus three legend swatches


def test_latency_and_throughput_render(violated_run_dir: Path) -> None:
    run = load_run(violated_run_dir)
    lat = _parse(latency_svg(run.history, run.schedule))
    assert len(_fills(lat, "circle")) == len(pair_ops(run.history))
    thr = _parse(throughput_svg(run.history, run.schedule))
    colors = {e.get("stroke") for e in thr.iter(f"{SVG_NS}polyline")}
    assert {COLORS["ok"], COLORS["fail"], COLORS["info"]} <= colors


def test_plots_are_bounded_for_huge_histories() -> None:
    history = []
    for i in range(20_000):
        history.append({"index": 2 * i, "time": i * 1_000_000, "process": i % 50, "type": "invoke",
                        "f": "transfer", "value": {"id": f"pay-{i}"}})
        history.append({"index": 2 * i + 1, "time": i * 1_000_000 + 500_000, "process": i % 50,
                        "type": "info" if i == 777 else "ok", "f": "transfer", "value": {"id": f"pay-{i}"}})
    svg = timeline_svg(history)
    root = _parse(svg)
    assert len(_fills(root, "rect")) <= MAX_SVG_POINTS + 50
    assert "showing" in svg and "20000 operations" in svg
    assert COLORS["info"] in _fills(root, "rect")  # the one unknown op survives thinning
    assert len(svg) < 1_000_000


def test_empty_history_still_renders() -> None:
    root = _parse(timeline_svg([]))
    assert any(t.text == "no client operations" for t in root.iter(f"{SVG_NS}text"))
