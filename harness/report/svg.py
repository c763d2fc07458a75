"""A minimal SVG writer: enough for the report's plots without a plotting dependency.

Plots must render inside Allure's attachment viewer and in any browser, offline;
hand-written SVG does that, and keeps the harness light to install.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

__all__ = ["Svg", "Frame", "COLORS", "nice_ticks"]

COLORS = {
    "ok": "#2e9e44",
    "fail": "#d62728",
    "info": "#f0a30a",
    "invoke": "#888888",
    "fault": "#7b4fd6",
    "axis": "#444444",
    "grid": "#e4e4e4",
    "text": "#222222",
}


def _n(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


@dataclass
class Svg:
    """An SVG document built element by element."""

    width: int
    height: int
    parts: list[str] = field(default_factory=list)

    def rect(self, x: float, y: float, w: float, h: float, fill: str, *,
             opacity: float = 1.0, title: str | None = None, stroke: str | None = None) -> None:
        extra = f' fill-opacity="{opacity}"' if opacity != 1.0 else ""
        if stroke:
            extra += f' stroke="{stroke}" stroke-width="1"'
        body = f"<title>{escape(title)}</title>" if title else ""
        self.parts.append(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0.5))}" '
                          f'height="{_n(max(h, 0.5))}" fill="{fill}"{extra}>{body}</rect>')

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str, width: float = 1,
             *, dash: str | None = None) -> None:
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" '
                          f'stroke="{stroke}" stroke-width="{width}"{d}/>')

    def circle(self, x: float, y: float, r: float, fill: str, *, title: str | None = None) -> None:
        body = f"<title>{escape(title)}</title>" if title else ""
        self.parts.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{r}" fill="{fill}">{body}</circle>')

    def polyline(self, points: list[tuple[float, float]], stroke: str, width: float = 1.5) -> None:
        if not points:
            return
        pts = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
        self.parts.append(f'<polyline points="{pts}" fill="none" stroke="{stroke}" '
                          f'stroke-width="{width}"/>')

    def text(self, x: float, y: float, s: str, *, size: int = 11, anchor: str = "start",
             color: str = COLORS["text"], bold: bool = False, rotate: bool = False) -> None:
        weight = ' font-weight="bold"' if bold else ""
        rot = f' transform="rotate(-90 {_n(x)} {_n(y)})"' if rotate else ""
        self.parts.append(f'<text x="{_n(x)}" y="{_n(y)}" font-size="{size}" '
                          f'text-anchor="{anchor}" fill="{color}"{weight}{rot}>{escape(s)}</text>')

    def render(self) -> str:
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
                f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" '
                f'font-family="Helvetica, Arial, sans-serif">')
        return "\n".join([head, f'<rect width="100%" height="100%" fill="white"/>',
                          *self.parts, "</svg>"]) + "\n"


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1.0
    if raw < 1:
        mag = 1.0
        while mag / 10 >= raw:
            mag /= 10
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = (lo // step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 9))
        t += step
    return ticks


@dataclass
class Frame:
    """A plot area with a linear time axis (seconds) and a caller-mapped y axis."""

    svg: Svg
    left: int
    top: int
    right: int
    bottom: int
    t_max: float

    @property
    def plot_w(self) -> float:
        return self.svg.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        return self.svg.height - self.top - self.bottom

    def x(self, seconds: float) -> float:
        return self.left + self.plot_w * min(max(seconds / self.t_max, 0.0), 1.0)

    def time_axis(self, label: str = "time since start (s)") -> None:
        s, y0 = self.svg, self.top + self.plot_h
        for t in nice_ticks(0, self.t_max, 8):
            x = self.x(t)
            s.line(x, self.top, x, y0, COLORS["grid"])
            s.text(x, y0 + 14, f"{t:g}", anchor="middle", size=10)
        s.line(self.left, y0, self.left + self.plot_w, y0, COLORS["axis"])
        s.line(self.left, self.top, self.left, y0, COLORS["axis"])
        s.text(self.left + self.plot_w / 2, y0 + 30, label, anchor="middle", size=11)

    def fault_windows(self, windows: list[tuple[float, float, str]]) -> None:
        """Shade each fault window and label it above the plot, staggered to stay legible."""
        for i, (start, end, label) in enumerate(windows):
            x1, x2 = self.x(start), self.x(end)
            self.svg.rect(x1, self.top, x2 - x1, self.plot_h, COLORS["fault"], opacity=0.13,
                          title=f"{label}: {start:.2f}s to {end:.2f}s")
            self.svg.line(x1, self.top, x1, self.top + self.plot_h, COLORS["fault"], 1, dash="3,3")
            self.svg.text(x1 + 2, self.top - 4 - 12 * (i % 3), label, size=10, color=COLORS["fault"])

    def legend(self, items: list[tuple[str, str]]) -> None:
        x = self.left
        y = self.svg.height - 8
        for color, name in items:
            self.svg.rect(x, y - 9, 10, 10, color)
            self.svg.text(x + 14, y, name, size=11)
            x += 24 + 7 * len(name)
