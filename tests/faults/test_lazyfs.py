"""txchaos-lazyfs (faults/lazyfs, harness.disk): while mounted it behaves as the
filesystem under it; a power cut (`drop`) leaves exactly what was fsynced."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from faults.catalog import CATALOG
from faults.family import Reach
from faults.schedule import generate
from harness.disk import LazyDisk, mounted, reap_stale_mounts
from harness.errors import BadInput
from harness.procs import ManagedProcess
from harness.topology import Node, Topology


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[LazyDisk]:
    d = LazyDisk(tmp_path / "mnt", tmp_path / "backing")
    try:
        yield d
    finally:
        d.close()
    assert all(m != d.mountpoint for _, m in mounted())


def write(path: Path, data: bytes, *, sync: bool, offset: int | None = None, trunc: bool = True) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if trunc and offset is None else 0)
    fd = os.open(path, flags, 0o644)
    try:
        if offset is None:
            os.write(fd, data)
        else:
            os.pwrite(fd, data, offset)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_fsynced_write_survives_a_power_cut_and_an_unsynced_one_does_not(disk: LazyDisk) -> None:
    m = disk.mountpoint
    write(m / "synced", b"kept", sync=True)
    write(m / "unsynced", b"lost", sync=False)
    assert (m / "unsynced").read_bytes() == b"lost"  # readable while the power is on
    assert (disk.backing / "unsynced").read_bytes() == b""  # but not on the disk
    assert disk.dirty() == (1, 4096)
    assert disk.drop() == (1, 4096)
    assert (m / "synced").read_bytes() == b"kept"
    assert (m / "unsynced").read_bytes() == b""  # created (metadata is durable), data gone
    assert (m / "unsynced").stat().st_size == 0


def test_closing_a_file_is_not_syncing_it(disk: LazyDisk) -> None:
    p = disk.mountpoint / "f"
    write(p, b"A" * 10000, sync=True)
    write(p, b"B" * 100, sync=False, offset=5000)  # an overwrite in the middle, closed
    assert p.read_bytes()[5000:5100] == b"B" * 100
    disk.drop()
    assert p.read_bytes() == b"A" * 10000


def _ops(root: Path) -> None:
    """Renames, unlinks, truncates and partial overwrites, as stores and brokers do them."""
    write(root / "a", b"0123456789" * 1000, sync=True)
    write(root / "a", b"xyz", sync=False, offset=4094)  # across a page boundary
    os.truncate(root / "a", 6000)
    os.truncate(root / "a", 9000)  # grows again: the cut-off bytes read as zeros
    write(root / "tmp", b"new contents", sync=True)
    os.rename(root / "tmp", root / "b")  # the write-then-rename pattern
    write(root / "c", b"gone soon", sync=False)
    os.unlink(root / "c")
    (root / "d").mkdir()
    write(root / "d" / "e", b"\x00\x01" * 3000, sync=False, offset=100)
    with open(root / "b", "ab") as f:  # append mode
        f.write(b" appended")


def test_while_powered_it_behaves_as_the_filesystem_under_it(disk: LazyDisk, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    _ops(plain)
    _ops(disk.mountpoint)
    assert tree(disk.mountpoint) == tree(plain)
    assert {p: os.stat(disk.mountpoint / p).st_size for p in tree(plain)} == \
        {p: os.stat(plain / p).st_size for p in tree(plain)}


def test_a_power_cut_leaves_what_was_synced_and_metadata(disk: LazyDisk) -> None:
    m = disk.mountpoint
    _ops(m)
    disk.drop()
    assert tree(m) == {"a": b"0123456789" * 1000, "b": b"new contents", "d/e": b""}
    assert disk.dirty() == (0, 0)


def test_replacing_a_file_by_rename_syncs_it_first(disk: LazyDisk) -> None:
    """ext4's auto_da_alloc: write-temp-then-rename over an old file never leaves it empty."""
    m = disk.mountpoint
    write(m / "config", b"old", sync=True)
    write(m / "config.tmp", b"new", sync=False)
    os.rename(m / "config.tmp", m / "config")
    write(m / "fresh.tmp", b"never synced", sync=False)
    os.rename(m / "fresh.tmp", m / "fresh")  # a new name replaces nothing: not synced
    disk.drop()
    assert (m / "config").read_bytes() == b"new"
    assert (m / "fresh").read_bytes() == b""


def test_sync_writes_everything_through(disk: LazyDisk) -> None:
    _ops(disk.mountpoint)
    before = tree(disk.mountpoint)
    disk.sync()
    disk.drop()
    assert tree(disk.mountpoint) == before == tree(disk.backing)


def _sqlite_writer(db: Path, synchronous: str, rows: int) -> Callable[[], None]:
    code = (f"import sqlite3, time\n"
            f"db = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            f"db.execute('PRAGMA journal_mode=WAL'); db.execute('PRAGMA synchronous={synchronous}')\n"
            f"db.execute('CREATE TABLE IF NOT EXISTS t (i INTEGER PRIMARY KEY, v TEXT)')\n"
            f"for i in range({rows}):\n"
            f"    db.execute('INSERT INTO t (v) VALUES (?)', ('x' * 200,))\n"
            f"print('done', flush=True)\n"
            f"time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "done"

    def power_cut() -> None:
        proc.send_signal(signal.SIGKILL)  # the process dies with the machine
        proc.wait()
    return power_cut


@pytest.mark.parametrize("synchronous,survives", [("FULL", True), ("OFF", False)])
def test_sqlite_after_a_power_cut(disk: LazyDisk, synchronous: str, survives: bool) -> None:
    """SQLite in WAL mode keeps every committed row through a power cut only with synchronous
    writes; its own integrity check passes either way."""
    db_path = disk.mountpoint / "store.sqlite"
    power_cut = _sqlite_writer(db_path, synchronous, 500)
    power_cut()
    lost = disk.drop()
    db = sqlite3.connect(db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        rows = db.execute("SELECT count(*) FROM t").fetchone()[0] if "t" in tables else 0
    finally:
        db.close()
    assert (rows == 500) is survives, f"{rows} rows after the cut; dropped {lost}"
    if survives:  # a kill -9 alone loses nothing either way: the page cache lives on
        assert lost[1] < 64 * 1024  # at most the shared-memory index, which is never synced


def test_a_mount_whose_filesystem_was_killed_is_reaped(tmp_path: Path) -> None:
    d = LazyDisk(tmp_path / "mnt", tmp_path / "backing")
    try:
        d._proc.send_signal(signal.SIGKILL)  # the filesystem dies, the mount stays behind
        d._proc.wait()
        assert any(m == d.mountpoint for _, m in mounted())
        assert d.mountpoint in reap_stale_mounts()
        assert all(m != d.mountpoint for _, m in mounted())
    finally:
        d.close()


def test_the_filesystem_unmounts_itself_when_its_owner_dies(tmp_path: Path) -> None:
    """A harness killed with SIGKILL closes the pipe the filesystem reads its commands from."""
    mnt = tmp_path / "mnt"
    owner = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom harness.disk import LazyDisk\n"
        f"LazyDisk({str(mnt)!r}, {str(tmp_path / 'backing')!r})\nprint('up', flush=True)\ntime.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    assert owner.stdout is not None and owner.stdout.readline().strip() == "up"
    assert any(m == mnt for _, m in mounted())
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 10
    while any(m == mnt for _, m in mounted()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(m != mnt for _, m in mounted())


def _powered(tmp: Path, name: str, role: str, disk: object | None) -> Node:
    proc = ManagedProcess(name, [sys.executable, "-c", "pass"], log_path=tmp / f"{name}.log")
    proc.disk = disk  # type: ignore[assignment]  # only its presence matters to the generator
    return Node(name, role, process=proc, meta={"failpoints": ["after-vote", "mid-apply"]})


def test_generated_power_cuts_hit_only_nodes_on_lazy_disks(tmp_path: Path) -> None:
    topo = Topology([_powered(tmp_path, "coordinator", "coordinator", object()),
                     _powered(tmp_path, "accounts", "participant", object()),
                     _powered(tmp_path, "gateway", "participant", None)], [])
    events = [e for seed in range(10) for e in
              generate(seed, families=["power-loss", "power-loss-all", "kill"], duration=60, topology=topo,
                       failpoints=("after-vote", "mid-apply")).events]
    cuts = [e for e in events if e.fault.startswith("power-loss")]
    assert {e.fault for e in cuts} == {"power-loss", "power-loss-all"}
    assert {t for e in cuts for t in e.targets} == {"coordinator", "accounts"}
    assert all(e.targets == ("accounts", "coordinator") for e in cuts if e.fault == "power-loss-all")
    at_steps = {e.params["failpoint"] for e in cuts if e.params.get("failpoint")}
    assert at_steps == {"after-vote", "mid-apply"}  # some cuts land at a protocol step
    assert any(e.fault == "power-loss" and not e.params.get("failpoint") for e in cuts)
    reach = Reach(topo, toxiproxy=None)  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="no data dir on a lazy disk.*accounts, coordinator"):
        CATALOG["power-loss"].plan(reach, ("gateway",), {"failpoint": None})
    with pytest.raises(BadInput, match="offers no failpoints"):
        CATALOG["power-loss"].plan(reach, ("accounts",), {"failpoint": "after-vote"})
    with pytest.raises(BadInput, match="failpoint's name"):
        CATALOG["power-loss"].check({"failpoint": 3})
