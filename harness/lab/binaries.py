"""Where the lab finds its programs: the project's .cache first, then PATH.

Environment overrides: TXCHAOS_KAFKA_JARS (a directory of jars),
TXCHAOS_TOXIPROXY_BIN and TXCHAOS_NATS_VERSION (a NATS release built from its Go
module instead of Debian's nats-server). A missing program is an InfraError naming it and the
command that installs it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from harness.errors import InfraError

__all__ = ["REPO", "CACHE", "find_program", "kafka_jars", "nats_server", "toxiproxy_bin", "java_bin",
           "go_bin", "build_once", "source_digest"]

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("TXCHAOS_CACHE", REPO / ".cache"))
_INSTALL = "run scripts/bootstrap.sh to install it"
_BUILD_LOCK = threading.Lock()


def go_bin() -> str | None:
    """The Go command, on PATH or where Debian and go.dev install it."""
    return shutil.which("go") or next((p for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")
                                       if os.access(p, os.X_OK)), None)


def source_digest(*files: Path) -> str:
    """12 hex digits naming one version of a program's sources (names and contents)."""
    return hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()[:12]


def build_once(out: Path, argv: Callable[[Path], list[str]], *, what: str, cwd: Path | None = None) -> Path:
    """`out` (named `<stem>-<source_digest>...`), built by running `argv(tmp)` unless it exists.

    The build writes a temporary file that replaces `out` atomically, so a concurrent
    builder sees the whole file or none; builds of older sources (same stem) are removed.
    InfraError with the compiler's output if it fails."""
    with _BUILD_LOCK:
        if out.is_file():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
        r = subprocess.run(argv(tmp), cwd=cwd, capture_output=True, text=True)
        if r.returncode != 0:
            raise InfraError(f"building {what} failed:\n{r.stderr.strip()}")
        tmp.replace(out)
        stem = out.name.rsplit("-", 1)[0]
        for stale in out.parent.glob(f"{stem}-*"):
            if stale != out and not stale.name.endswith(".tmp"):
                stale.unlink(missing_ok=True)
    return out


def find_program(name: str, *, what: str, extra_dirs: tuple[Path, ...] = ()) -> str:
    """Absolute path of `name` in `extra_dirs`, CACHE/bin, then PATH (and sbin)."""
    for d in (*extra_dirs, CACHE / "bin"):
        cand = d / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/lib/rabbitmq/bin"
    found = shutil.which(name, path=path)
    if found is None:
        raise InfraError(f"{what} not found ({name}); {_INSTALL}")
    return found


def nats_server() -> str:
    """The NATS server: Debian's, or with TXCHAOS_NATS_VERSION=X.Y.Z that release built from
    its Go module into CACHE/nats-X.Y.Z on first use (Debian 12 ships 2.9.10, from 2022)."""
    version = os.environ.get("TXCHAOS_NATS_VERSION", "").lstrip("v")
    if not version:
        return find_program("nats-server", what="NATS server")
    out = CACHE / f"nats-{version}" / "nats-server"
    if not out.is_file():
        go = go_bin()
        if go is None:
            raise InfraError(f"TXCHAOS_NATS_VERSION={version}: building it needs Go; {_INSTALL}")
        env = {**os.environ, "GOBIN": str(out.parent)}
        r = subprocess.run([go, "install", f"github.com/nats-io/nats-server/v2@v{version}"],
                           env=env, capture_output=True, text=True)
        if r.returncode != 0 or not out.is_file():
            raise InfraError(f"TXCHAOS_NATS_VERSION={version}: go install failed:\n{r.stderr.strip()[-2000:]}")
    return str(out)


def toxiproxy_bin() -> str:
    override = os.environ.get("TXCHAOS_TOXIPROXY_BIN")
    if override:
        if not os.access(override, os.X_OK):
            raise InfraError(f"TXCHAOS_TOXIPROXY_BIN={override} is not an executable file; "
                             f"unset it and {_INSTALL}")
        return override
    return find_program("toxiproxy-server", what="Toxiproxy server")


def kafka_jars() -> Path:
    """The directory holding kafka_2.13-*.jar and its dependencies."""
    override = os.environ.get("TXCHAOS_KAFKA_JARS")
    candidates = [Path(override)] if override else [CACHE / "kafka" / "libs"]
    for d in candidates:
        if any(d.glob("kafka_2.13-*.jar")):
            return d
    where = f"TXCHAOS_KAFKA_JARS={override}" if override else str(candidates[0])
    raise InfraError(f"Kafka jars not found in {where}; {_INSTALL}")


def kafka_version(jars: Path) -> str:
    for jar in sorted(jars.glob("kafka_2.13-*.jar")):
        return jar.name.removeprefix("kafka_2.13-").removesuffix(".jar")
    return "unknown"


def java_bin() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        return str(Path(java_home) / "bin" / "java")
    return find_program("java", what="Java 17 runtime (openjdk-17-jre-headless)")
