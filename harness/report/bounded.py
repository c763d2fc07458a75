"""Size caps for attachments: big attachments make Allure reports slow or unusable.

Every cap is stated inside the attachment, so a reader knows what was left out
and where the whole file is (the run directory).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

__all__ = ["MAX_TEXT", "MAX_HTML", "MAX_SVG_POINTS", "GZIP_ABOVE", "MAX_GZIP_INPUT",
           "cap_text", "tail_lines", "maybe_gzip"]

MAX_TEXT = 256 * 1024          # bytes of any text attachment
MAX_HTML = 512 * 1024          # bytes of an HTML attachment
MAX_SVG_POINTS = 4000          # marks drawn in one plot
GZIP_ABOVE = 256 * 1024        # history larger than this is attached gzipped
MAX_GZIP_INPUT = 64 * 1024 * 1024  # history larger than this is cut before gzip


def cap_text(text: str, limit: int = MAX_TEXT, *, where: str = "the run directory") -> str:
    """`text` cut to about `limit` bytes, with a last line saying it was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    kept = data[:limit].decode("utf-8", "ignore")
    return (kept + f"\n[cut: showing the first {limit} of {len(data)} bytes; "
            f"the whole file is in {where}]\n")


def tail_lines(path: Path, lines: int = 200, limit: int = 64 * 1024) -> str:
    """The last `lines` lines of a log (at most `limit` bytes), with a header saying so."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            f.seek(max(0, size - limit))
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"[could not read {path}: {e}]"
    kept = text.splitlines()[-lines:]
    if size > limit or len(text.splitlines()) > lines:
        header = f"[last {len(kept)} lines of {path.name} ({size} bytes in all)]\n"
    else:
        header = f"[all of {path.name}, {size} bytes]\n"
    return header + "\n".join(kept) + "\n"


def maybe_gzip(path: Path) -> tuple[bytes, bool, str]:
    """The file's bytes, gzipped when large: (body, gzipped, note about any cut)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        data = f.read(MAX_GZIP_INPUT)
    note = ""
    if size > MAX_GZIP_INPUT:
        data = data[: data.rfind(b"\n") + 1]
        note = (f"cut: the first {len(data)} of {size} bytes; "
                f"the whole history is in {path}")
        data += (json.dumps({"note": note}) + "\n").encode()
    if len(data) > GZIP_ABOVE:
        return gzip.compress(data, compresslevel=6, mtime=0), True, note
    return data, False, note

