"""Where the Java processor's build lands, and a clear error when it is missing.

scripts/bootstrap.sh builds targets/kafka_eos/java with Maven into
$TXCHAOS_CACHE/kafka-eos-java (default .cache/kafka-eos-java): the processor's
classes/ and lib/ with kafka-clients 4.1.1 and its dependencies.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import InfraError

__all__ = ["build_dir", "built_classpath", "processor_classpath"]


def build_dir() -> Path:
    cache = os.environ.get("TXCHAOS_CACHE") or str(Path(__file__).resolve().parents[2] / ".cache")
    return Path(cache).resolve() / "kafka-eos-java"


def built_classpath() -> str | None:
    """classes dir + dependency jars, or None if the build is absent."""
    d = build_dir()
    classes, lib = d / "classes", d / "lib"
    if not (classes / "txchaos" / "eos" / "Processor.class").exists() or not any(lib.glob("kafka-clients-*.jar")):
        return None
    return f"{classes}{os.pathsep}{lib}/*"


def processor_classpath() -> str:
    cp = built_classpath()
    if cp is None:
        raise InfraError(f"the Java EOS processor is not built in {build_dir()}; run scripts/bootstrap.sh "
                         "(it builds targets/kafka_eos/java with Maven)")
    return cp
