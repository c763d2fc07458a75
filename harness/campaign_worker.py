"""A campaign worker: a process that runs chaos runs one after another on its own lab.

`python -m harness.campaign_worker --lab local --lab-root DIR` reads one job a
line on stdin (JSON: index, seed, out, run — RunConfig fields) and answers one
JSON line on stdout per job (a `RunRecord`). The lab is started by the first
run and shared by the worker's later runs (they run one at a time, so a broker
fault of one run never hits another); after a run breaks with an
infrastructure error the lab is replaced. Parallel workers have separate labs
on separate ports.

SIGTERM (the campaign's way to stop it; the worker has its own session, so a
terminal's Ctrl-C reaches only the campaign) interrupts the run in progress,
which heals its faults and stops its target; then the lab goes down.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from harness.campaign import RunRecord
from harness.errors import EXIT_BAD_INPUT, BadInput, TxchaosError

__all__ = ["run_one", "record_for_run_dir", "config_fields"]


def config_fields() -> set[str]:
    from harness.run import RunConfig

    return {f.name for f in dataclasses.fields(RunConfig)}


def make_config(job: dict[str, Any]) -> Any:
    """The RunConfig of a job: the campaign's shared fields, this run's seed and directory."""
    from harness.run import RunConfig

    fields = config_fields()
    kwargs = {k: v for k, v in job["run"].items() if k in fields - {"seed", "out"}}
    if "faults" in kwargs:
        kwargs["faults"] = tuple(kwargs["faults"])
    return RunConfig(**kwargs, seed=int(job["seed"]), out=Path(job["out"]))


def record_for_run_dir(index: int, seed: int, run_dir: Path, *, elapsed_s: float,
                       exit_code: int, error: str | None = None,
                       command: str | None = None) -> RunRecord:
    """What campaign.json keeps of a run: verdict, violated checkers, coverage of its schedule."""
    from faults.schedule import Schedule

    verdict: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        verdict = json.loads((run_dir / "verdict.json").read_text())
    coverage: list[dict[str, Any]] = []
    with contextlib.suppress(TxchaosError):
        if (run_dir / "schedule.json").is_file():
            seconds = Schedule.load(run_dir / "schedule.json").coverage()
            coverage = [{"family": f, "target": t, "seconds": round(s, 3)}
                        for (f, t), s in sorted(seconds.items())]
    valid = verdict.get("valid") if error is None else None
    violated = [c["name"] for c in verdict.get("checkers", []) if c.get("valid") is False]
    return RunRecord(index=index, seed=seed, run_dir=str(run_dir), valid=valid,
                     exit_code=exit_code, elapsed_s=round(elapsed_s, 3), error=error,
                     violated=violated, coverage=coverage, command=command)


def run_one(job: dict[str, Any], lab: Any) -> tuple[RunRecord, str | None]:
    """Run one job on `lab`; (record, error kind: None, "bad-input" or "infra")."""
    from harness.run import run_chaos

    t0 = time.monotonic()
    config = make_config(job)
    run_dir = Path(job["out"])
    try:
        result = run_chaos(config, lab=lab)
    except BadInput as e:
        return record_for_run_dir(job["index"], job["seed"], run_dir, elapsed_s=time.monotonic() - t0,
                                  exit_code=EXIT_BAD_INPUT, error=str(e)), "bad-input"
    except TxchaosError as e:
        return record_for_run_dir(job["index"], job["seed"], run_dir, elapsed_s=time.monotonic() - t0,
                                  exit_code=e.exit_code, error=str(e)), "infra"
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # a bug or a broken service: the campaign goes on, the run says why
        traceback.print_exc()
        return record_for_run_dir(job["index"], job["seed"], run_dir, elapsed_s=time.monotonic() - t0,
                                  exit_code=EXIT_BAD_INPUT,
                                  error=f"{type(e).__name__}: {e}"), "infra"
    return record_for_run_dir(job["index"], job["seed"], result.run_dir,
                              elapsed_s=time.monotonic() - t0, exit_code=result.exit_code,
                              command=result.command), None


def _interrupt_once(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # healing must not be interrupted again
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.campaign_worker")
    parser.add_argument("--lab", default="local")
    parser.add_argument("--lab-root", type=Path, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt_once)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from harness.lab import Lab

    generation = 0
    lab = Lab.from_option(args.lab, root=args.lab_root.resolve() / f"lab{generation}")
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            job = json.loads(line)
            record, kind = run_one(job, lab)
            reply = {"record": record.to_json(), "kind": kind}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
            if kind == "infra":
                with contextlib.suppress(Exception):
                    lab.down()
                generation += 1
                lab = Lab.from_option(args.lab, root=args.lab_root.resolve() / f"lab{generation}")
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with contextlib.suppress(Exception):
            lab.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
