"""What determines a chaos run, and how it is saved and read back for replay.

`RunConfig` is the whole configuration of a run. Its JSON form is the `config`
object of run.json (docs/formats.md), so that `txchaos run --replay RUN_DIR`
re-runs exactly the same requests and fault schedule, and `txchaos check
RUN_DIR` re-checks with the options the run itself used. Fields added later
are saved and replayed without further code: the JSON form walks the fields.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faults.catalog import DEFAULT_FAULTS  # the default mix lives with the fault families
from harness.errors import BadInput

__all__ = ["DEFAULT_FAULTS", "RunConfig", "default_run_dir", "load_run_meta", "replay_config", "txchaos_version"]

# Fields that say where and how a run is kept, not what it does: never saved as config.
_NOT_SAVED = {"out", "schedule", "schedule_file"}


@dataclass
class RunConfig:
    """Everything that determines a run; with the same seed the requests and the
    fault schedule are the same (the target's own timing is not)."""

    target: str
    mutant: str | None = None
    faults: tuple[str, ...] = DEFAULT_FAULTS
    duration: float = 45.0
    seed: int | None = None
    out: Path | None = None
    clients: int = 4
    accounts: int = 8
    intensity: float = 0.5
    quiesce_timeout: float = 30.0
    schedule_file: Path | None = None
    lab: str = "local"
    cluster: int = 1  # nodes per broker in a local lab: 1, or 3 (harness.lab.cluster)
    failpoints: dict[str, str] = field(default_factory=dict)
    schedule: Any = None  # a faults.schedule.Schedule given in code; wins over `faults`
    workload: str = "mixed"  # a shape of harness.workload_shapes (docs/workloads.md)
    target_options: dict[str, str] = field(default_factory=dict)  # the adapter's options (--target-opt)

    def to_json(self) -> dict[str, Any]:
        """The saved configuration: every field that shapes the run."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name in _NOT_SAVED:
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], *, where: str) -> tuple[RunConfig, list[str]]:
        """A config from its saved form, and warnings for keys this version does not know."""
        known = {f.name: f for f in dataclasses.fields(cls) if f.name not in _NOT_SAVED}
        if not isinstance(data, dict) or not isinstance(data.get("target"), str):
            raise BadInput(f"{where}: no run configuration (a 'config' object with a target)")
        kwargs: dict[str, Any] = {"workload": "uniform"}  # what runs saved before shapes ran
        warnings = []
        for key, value in data.items():
            if key not in known:
                warnings.append(f"{where}: option {key!r} is not known to this txchaos; ignored")
            else:
                kwargs[key] = tuple(value) if isinstance(value, list) else value
        try:
            return cls(**kwargs), warnings
        except TypeError as e:
            raise BadInput(f"{where}: bad run configuration: {e}") from None

    def reproduce_command(self, run_dir: Path) -> str:
        """The command that re-runs this run: a replay of its saved directory."""
        argv = ["txchaos", "run", "--replay", str(Path(run_dir).resolve())]
        if self.lab != "local":
            argv += ["--lab", self.lab]
        return shlex.join(argv)


def default_run_dir(config: RunConfig, seed: int) -> Path:
    """runs/<time>-<target>[-<mutant>]-seed<N> under the working directory, absolute, claimed
    by creating it: a run started in the same second with the same name gets `-2`, `-3`..."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    suffix = f"-{config.mutant}" if config.mutant else ""
    name = f"{stamp}-{config.target}{suffix}-seed{seed}".replace("/", "_").replace(":", "_")
    base = (Path("runs") / name).resolve()
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = base if n == 1 else base.with_name(f"{name}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise BadInput(f"{base}: a thousand runs of that name in one second; give --out")


def load_run_meta(run_dir: Path) -> dict[str, Any]:
    """run.json of a saved run, or BadInput naming what is wrong."""
    path = Path(run_dir) / "run.json"
    if not Path(run_dir).is_dir():
        raise BadInput(f"{run_dir}: not a run directory")
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{run_dir}: no run.json (not a run directory written by txchaos run)") from None
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: not JSON ({e})") from None
    if not isinstance(meta, dict):
        raise BadInput(f"{path}: expected a JSON object")
    return meta


def txchaos_version() -> dict[str, str]:
    """This txchaos: package version and git revision (for run.json and replay warnings)."""
    from importlib.metadata import PackageNotFoundError, version

    from harness.report.files import git_revision

    try:
        v = version("txchaos")
    except PackageNotFoundError:
        v = "unknown"
    return {"version": v, "revision": git_revision(Path(__file__).resolve().parents[1])}


def replay_config(run_dir: Path, *, target: str | None = None) -> tuple[RunConfig, list[str]]:
    """The configuration of a saved run, set to replay its schedule and seed exactly.

    Returns the config and warnings: options this version does not know, a
    different txchaos version or revision, a target other than the run's.
    """
    from faults.schedule import Schedule

    run_dir = Path(run_dir).resolve()
    meta = load_run_meta(run_dir)
    if "config" not in meta:
        raise BadInput(f"{run_dir}/run.json has no 'config' (written by an older txchaos); "
                       f"replay it with --schedule {run_dir}/schedule.json and its seed {meta.get('seed')}")
    config, warnings = RunConfig.from_json(meta["config"], where=f"{run_dir}/run.json")
    if not (run_dir / "schedule.json").is_file():
        raise BadInput(f"{run_dir}: no schedule.json to replay")
    config.schedule = Schedule.load(run_dir / "schedule.json")
    if target is not None and target != config.target:
        warnings.append(f"replaying a run of target {config.target!r} against {target!r}")
        config.target = target
    saved, here = meta.get("txchaos") or {}, txchaos_version()
    for key in ("version", "revision"):
        if saved.get(key) and saved.get(key) != here[key]:
            warnings.append(f"the run was made by txchaos {key} {saved[key]}; this is {here[key]}")
    return config, warnings
