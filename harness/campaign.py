"""A chaos campaign: many seeded runs within a budget, and what they covered.

This module is the campaign's pure part — durations, shards, run seeds, the
coverage table and campaign.json — so it can be tested without a lab; the runs
themselves are executed by `harness.campaign_runner`.

Seeds: run i of campaign seed C has seed `run_seed(C, i)` = base(C) + i, the
base a hash of C that does not depend on Python's hash salt, so a run is
replayable from C and i alone; consecutive seeds let the schedule generator
cover the fault space systematically. Shard I/N takes exactly the indices
i ≡ I-1 (mod N). Together the shards
of a `--runs R` campaign run exactly the seeds of the unsharded one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import EXIT_BAD_INPUT, EXIT_UNKNOWN, EXIT_VALID, EXIT_VIOLATED, BadInput

__all__ = ["parse_duration", "format_seconds", "Shard", "parse_shard", "run_seed", "CampaignSpec",
           "RunRecord", "coverage_table", "format_coverage", "format_runs", "campaign_exit_code",
           "write_campaign_json", "CAMPAIGN_VERSION"]

CAMPAIGN_VERSION = 1
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([hms]?)")


def parse_duration(text: str, what: str = "--budget") -> float:
    """Seconds from '90', '90s', '20m', '1h' or '1h30m'; BadInput otherwise."""
    s = str(text).strip().lower()
    pos, total, units = 0, 0.0, []
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None or (m.group(2) == "" and m.end() != len(s)):
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        units.append(m.group(2))
        pos = m.end()
    if not s or pos != len(s) or len(set(units)) != len(units):
        raise BadInput(f"{what} {text!r}: expected a duration like 90s, 20m, 1h or 1h30m")
    if total <= 0:
        raise BadInput(f"{what} must be positive, got {text!r}")
    return total


def format_seconds(seconds: float) -> str:
    """'1h02m', '12m05s', '42s': short enough for a live line."""
    s = max(0, int(round(seconds)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (1-based, as a CI matrix counts)."""

    index: int = 1
    count: int = 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def run_indices(self, runs: int | None = None) -> Iterator[int]:
        """The campaign's run indices this shard runs, in order; all of them if `runs` is None."""
        i = self.index - 1
        while runs is None or i < runs:
            yield i
            i += self.count


def parse_shard(text: str) -> Shard:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if m is None:
        raise BadInput(f"--shard {text!r}: expected I/N, e.g. 1/4 for the first of four shards")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 1 <= index <= count:
        raise BadInput(f"--shard {text!r}: I must be between 1 and N (N >= 1)")
    return Shard(index, count)


_MAX_RUNS = 2**24  # runs per campaign that get distinct seeds


def run_seed(campaign_seed: int, index: int) -> int:
    """The seed of run `index`: consecutive from a base that a hash of the campaign
    seed picks. Consecutive, because the schedule generator walks each family's
    targets so that seeds s, s+1, ... cover every (family, target) pair before
    repeating one (faults/generator.py); hashed, so that campaigns with nearby seeds
    (tonight's date and yesterday's) do not re-run each other's runs. Stable across
    machines, Python versions and shardings."""
    digest = hashlib.sha256(f"txchaos-campaign:{campaign_seed}".encode()).digest()
    base = int.from_bytes(digest[:8], "big") % (2**31 - 1 - _MAX_RUNS) + 1
    return base + index % _MAX_RUNS


@dataclass
class CampaignSpec:
    """What a campaign runs. `run` holds the RunConfig fields every run shares
    (target, mutant, faults, duration, ...); only those the user gave, so the
    run's own defaults apply to the rest."""

    seed: int
    run: dict[str, Any]
    budget_s: float | None = None
    runs: int | None = None
    shard: Shard = field(default_factory=Shard)
    parallel: int = 1
    keep_going: bool = False

    def __post_init__(self) -> None:
        if self.budget_s is None and self.runs is None:
            raise BadInput("give --budget or --runs (or both)")
        if self.runs is not None and self.runs < 1:
            raise BadInput(f"--runs must be at least 1, got {self.runs}")
        if self.parallel < 1:
            raise BadInput(f"--parallel must be at least 1, got {self.parallel}")
        duration = float(self.run.get("duration") or 0)
        if self.budget_s is not None and duration and self.budget_s < duration:
            raise BadInput(f"--budget {format_seconds(self.budget_s)} is shorter than one run "
                           f"(--duration {duration:g}s)")

    def jobs(self) -> Iterator[tuple[int, int]]:
        """(index, seed) of every run of this shard, in order."""
        for i in self.shard.run_indices(self.runs):
            yield i, run_seed(self.seed, i)

    def command(self) -> str:
        """The command line that repeats this campaign (shard included)."""
        r = self.run
        argv = ["txchaos", "campaign", "--target", str(r["target"]), "--seed", str(self.seed)]
        if self.runs is not None:
            argv += ["--runs", str(self.runs)]
        if self.budget_s is not None:
            argv += ["--budget", f"{self.budget_s:g}s"]
        for key, flag in (("mutant", "--mutant"), ("duration", "--duration"),
                          ("workload", "--workload"), ("clients", "--clients"),
                          ("accounts", "--accounts"), ("intensity", "--intensity"),
                          ("quiesce_timeout", "--quiesce"), ("lab", "--lab"), ("cluster", "--cluster")):
            if r.get(key) is not None:
                argv += [flag, f"{r[key]:g}" if isinstance(r[key], float) else str(r[key])]
        for key, value in (r.get("target_options") or {}).items():
            argv += ["--target-opt", f"{key}={value}"]
        if r.get("faults") is not None:
            argv += ["--faults", ",".join(r["faults"]) or "none"]
        if self.shard.count > 1:
            argv += ["--shard", str(self.shard)]
        if self.keep_going:
            argv.append("--keep-going")
        return " ".join(argv)


@dataclass
class RunRecord:
    """One finished (or broken) run of a campaign, as campaign.json keeps it."""

    index: int
    seed: int
    run_dir: str
    valid: bool | str | None  # None: the run broke before a verdict
    exit_code: int
    elapsed_s: float
    error: str | None = None
    violated: list[str] = field(default_factory=list)  # checkers that found a violation
    coverage: list[dict[str, Any]] = field(default_factory=list)  # {family, target, seconds}
    command: str | None = None

    @property
    def label(self) -> str:
        return {True: "VALID", False: "VIOLATED", "unknown": "UNKNOWN"}.get(
            self.valid, "BROKEN")  # type: ignore[arg-type]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def coverage_table(records: Iterable[RunRecord]) -> list[dict[str, Any]]:
    """(family, target) → the runs that hit it and the seconds under fault, sorted."""
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        for c in r.coverage:
            row = table.setdefault((c["family"], c["target"]),
                                   {"family": c["family"], "target": c["target"],
                                    "runs": 0, "seconds": 0.0})
            row["runs"] += 1
            row["seconds"] = round(row["seconds"] + float(c["seconds"]), 3)
    return [table[k] for k in sorted(table)]


def format_coverage(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "coverage: no fault was injected"
    head = ("family", "node/link", "runs", "seconds under fault")
    lines = [head] + [(r["family"], r["target"], str(r["runs"]), f"{r['seconds']:.1f}") for r in rows]
    w = [max(len(line[i]) for line in lines) for i in range(3)]
    out = [f"{a:<{w[0]}}  {b:<{w[1]}}  {c:>{w[2]}}  {d}" for a, b, c, d in lines]
    out.insert(1, "-" * max(len(x) for x in out))
    return "\n".join(out)


def format_runs(records: list[RunRecord]) -> str:
    if not records:
        return "no run finished"
    lines = []
    for r in sorted(records, key=lambda r: r.index):
        why = ", ".join(r.violated) if r.violated else (r.error or "")
        lines.append(f"run {r.index:>4}  seed {r.seed:>10}  {r.label:<8}  {r.elapsed_s:6.1f}s  "
                     f"{r.run_dir}" + (f"  ({why})" if why else ""))
    return "\n".join(lines)


def campaign_exit_code(records: list[RunRecord]) -> int:
    """Like `txchaos run`: a violation wins, then a broken run, then unknown; no run
    at all checked nothing (3)."""
    if not records:
        return EXIT_BAD_INPUT
    if any(r.valid is False for r in records):
        return EXIT_VIOLATED
    if any(r.valid is None for r in records):
        return EXIT_BAD_INPUT
    if any(r.valid == "unknown" for r in records):
        return EXIT_UNKNOWN
    return EXIT_VALID


def write_campaign_json(path: Path, spec: CampaignSpec, records: list[RunRecord], *,
                        started_at: str, elapsed_s: float, stopped: str) -> dict[str, Any]:
    """campaign.json: the spec, each run (a replay bundle), the coverage and the verdict."""
    done = sorted(records, key=lambda r: r.index)
    data = {
        "version": CAMPAIGN_VERSION,
        "seed": spec.seed,
        "run": {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.run.items()},
        "budget_s": spec.budget_s, "runs_requested": spec.runs,
        "shard": {"index": spec.shard.index, "count": spec.shard.count},
        "parallel": spec.parallel, "keep_going": spec.keep_going,
        "command": spec.command(), "started_at": started_at,
        "elapsed_s": round(elapsed_s, 3), "stopped": stopped,
        "verdict": {"exit_code": campaign_exit_code(done), "runs": len(done),
                    "valid": sum(r.valid is True for r in done),
                    "violated": sum(r.valid is False for r in done),
                    "unknown": sum(r.valid == "unknown" for r in done),
                    "broken": sum(r.valid is None for r in done)},
        "coverage": coverage_table(done),
        "runs": [r.to_json() for r in done],
    }
    path.write_text(json.dumps(data, indent=1) + "\n")
    return data
