"""A server's learning curve: its candidate's holdout accuracy against the number of labels it
learned from, one point per retrain (published or not), kept beside the server's versions in
`curve.json` (versions are pruned; the curve is not, up to `MAX_POINTS`)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from model.compare import Comparison

log = logging.getLogger(__name__)

CURVE_FILE = "curve.json"
MAX_POINTS = 200  # the oldest go first


@dataclass(frozen=True)
class CurvePoint:
    """One retrain of a server's model: what it learned from and how its candidate did."""

    kind: str  # "head" or "network"
    labels: int  # labelled images it learned from (the holdout apart)
    accuracy: float | None  # the candidate's holdout accuracy (None: no holdout)
    before: float | None  # the model it was judged against
    holdout: int
    version: int | None  # the version it became, or None: not published
    made: str  # ISO time


def add_point(
    folder: Path, kind: str, labels: int, comparison: Comparison | None, version: int | None
) -> None:
    """Add one retrain's point to the server's curve in `folder`."""
    point = CurvePoint(
        kind=kind,
        labels=int(labels),
        accuracy=comparison.after if comparison is not None else None,
        before=comparison.before if comparison is not None else None,
        holdout=comparison.images if comparison is not None else 0,
        version=version,
        made=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    kept = [asdict(old) for old in curve_points(folder)][-(MAX_POINTS - 1) :]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staged = folder / f".{CURVE_FILE}.{os.getpid()}"
    staged.write_text(json.dumps([*kept, asdict(point)], indent=1), encoding="utf-8")
    staged.replace(folder / CURVE_FILE)


def curve_points(folder: Path) -> list[CurvePoint]:
    """The server's points, oldest first; none when it has never retrained (or the file is
    unreadable: the curve is a picture, never a reason to fail a retrain)."""
    path = Path(folder) / CURVE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [CurvePoint(**point) for point in raw]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError) as error:
        log.warning("cannot read a server's learning curve: %s", error)
        return []
