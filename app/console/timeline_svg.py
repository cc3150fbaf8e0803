"""A component's schedule as a picture: a server-rendered SVG, readable without colour.

The tier is the height of a step line (labelled on the left, most open on top); the line
is solid where the schedule is history and dashed ahead of now. Stages are marked by shape:
a filled circle took effect, a hollow circle is upcoming, a hollow square is frozen by a
hold, a hollow triangle is above an emergency ceiling. A vertical ``now`` line, a vertical
``hold`` line, and a horizontal ``ceiling`` line complete it. Every mark has a ``<title>``
and the whole picture an ``aria-label`` saying the same in words; the page repeats the
stages in a table beneath.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from markupsafe import Markup, escape

from app.policy.tiers import LADDER, Tier

WIDTH, HEIGHT = 760, 104
LEFT, RIGHT = 78, 16
TOP, STEP = 14, 18
_PLOT = WIDTH - LEFT - RIGHT


@dataclass(frozen=True)
class Mark:
    tier: Tier
    at: datetime
    state: str  # past | upcoming | held | capped


def _y(tier: Tier) -> float:
    return TOP + (len(LADDER) - 1 - tier.rank) * STEP


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def timeline_svg(
    *,
    label: str,
    marks: list[Mark],
    now: datetime,
    held_at: datetime | None,
    ceiling: Tier | None,
) -> Markup:
    times = [m.at for m in marks] + [now] + ([held_at] if held_at else [])
    start, end = min(times), max(times)
    pad = max((end - start) * 0.06, timedelta(days=1))
    start, end = start - pad, end + pad
    span = (end - start).total_seconds()

    def x(at: datetime) -> float:
        return round(LEFT + (at - start).total_seconds() / span * _PLOT, 1)

    parts: list[Markup | str] = []
    base = TOP + (len(LADDER) - 1) * STEP
    for tier in LADDER:
        y = _y(tier)
        parts.append(
            Markup('<text class="tl-tier" x="{}" y="{}">{}</text>').format(LEFT - 8, y + 4, tier)
        )
        parts.append(
            Markup('<line class="tl-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>').format(
                LEFT, WIDTH - RIGHT, y, y
            )
        )
    # The step line: internal before the first stage, then each stage's tier from its time.
    points: list[tuple[float, float, bool]] = []  # x, y, is-history
    tier = Tier.INTERNAL
    cursor = start
    for m in sorted(marks, key=lambda m: m.at):
        points.append((x(cursor), _y(tier), cursor <= now))
        points.append((x(m.at), _y(tier), m.at <= now))
        tier, cursor = m.tier, m.at
    points.append((x(cursor), _y(tier), cursor <= now))
    points.append((x(end), _y(tier), False))
    for (x1, y1, past1), (x2, y2, _) in itertools.pairwise(points):
        cls = "tl-step" if past1 else "tl-step tl-ahead"
        parts.append(
            Markup('<line class="{}" x1="{}" y1="{}" x2="{}" y2="{}"/>').format(cls, x1, y1, x2, y2)
        )
    if ceiling is not None:
        y = _y(ceiling)
        parts.append(
            Markup(
                '<g><title>emergency ceiling: {}</title><line class="tl-ceiling" x1="{}" x2="{}" '
                'y1="{}" y2="{}"/><text class="tl-note" x="{}" y="{}">ceiling {}</text></g>'
            ).format(ceiling, LEFT, WIDTH - RIGHT, y - 3, y - 3, WIDTH - RIGHT - 4, y - 6, ceiling)
        )
    if held_at is not None:
        hx = x(held_at)
        parts.append(
            Markup(
                '<g><title>held since {}</title><line class="tl-hold" x1="{}" x2="{}" y1="{}" '
                'y2="{}"/><text class="tl-note" x="{}" y="{}">hold</text></g>'
            ).format(_stamp(held_at), hx, hx, TOP - 8, base + 8, hx + 3, TOP - 4)
        )
    nx = x(now)
    parts.append(
        Markup(
            '<g><title>now: {}</title><line class="tl-now" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<text class="tl-now-label" x="{}" y="{}">now</text></g>'
        ).format(_stamp(now), nx, nx, TOP - 10, base + 12, nx, base + 24)
    )
    for m in marks:
        parts.append(_marker(m, x(m.at), _y(m.tier)))
    parts.append(
        Markup('<text class="tl-axis" x="{}" y="{}">{}</text>').format(
            LEFT, HEIGHT - 4, _stamp(start)[:10]
        )
    )
    parts.append(
        Markup('<text class="tl-axis tl-end" x="{}" y="{}">{}</text>').format(
            WIDTH - RIGHT, HEIGHT - 4, _stamp(end)[:10]
        )
    )
    words = "; ".join(f"{m.tier} {m.state} at {_stamp(m.at)}" for m in marks) or "no stages"
    return Markup(
        '<svg class="timeline" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'aria-label="{aria}" xmlns="http://www.w3.org/2000/svg"><title>{title}</title>{body}</svg>'
    ).format(
        w=WIDTH,
        h=HEIGHT,
        aria=f"Schedule of {label}: {words}",
        title=f"Schedule of {label}",
        body=Markup("").join(escape(p) for p in parts),
    )


def _marker(m: Mark, x: float, y: float) -> Markup:
    title = f"{m.tier} — {m.state} — {_stamp(m.at)}"
    if m.state == "held":
        shape = Markup('<rect class="tl-mark tl-open" x="{}" y="{}" width="9" height="9"/>').format(
            x - 4.5, y - 4.5
        )
    elif m.state == "capped":
        shape = Markup('<path class="tl-mark tl-open" d="M{} {} l5 9 h-10 z"/>').format(x, y - 5)
    else:
        cls = "tl-mark tl-done" if m.state == "past" else "tl-mark tl-open"
        shape = Markup('<circle class="{}" cx="{}" cy="{}" r="5"/>').format(cls, x, y)
    return Markup("<g><title>{}</title>{}</g>").format(title, shape)
