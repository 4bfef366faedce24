"""The two rules that turn stored votes into a training set: an image's label, and its split.

Both are pure functions of what is stored, so they can be tested alone and recomputed at any
time: what is derived from them (each server's `server_images` rows) is rewritten from the votes
whenever they change, and a vote, a `!forget` or a new image changes exactly the images it
touches.

- **The label.** If any moderator (a member with Manage Messages) voted on an image, the majority
  of the moderators' votes decides; otherwise the majority of all votes does. A tie at the
  deciding level gives no label: the image is a conflict, listed for people to settle, never
  guessed and never trained on.
- **Neither.** `NEITHER` is a third answer ("neither a Jedi nor a Sith"): it is counted and
  decided like the class names (a tie with it is a conflict), and an image it labels is never
  a Jedi or a Sith: it teaches a server's model what to refuse (`model.head`), nothing else.
- **The split.** `HOLDOUT_PERCENT` of the images are a holdout that training never sees, chosen
  by the image's SHA-256 (`int(sha256[:8], 16) % 100`), so an image's side of the split never
  changes as the set grows, whatever order images arrive in.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from dataset.records import DatasetError

CLASS_NAMES = ("jedi", "sith")
NEITHER = "neither"  # the third answer: an image that is neither class
HOLDOUT_PERCENT = 20
_CLASS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")  # a folder name and a label


def check_class_names(class_names: tuple[str, str]) -> tuple[str, str]:
    """Two different class names, each a short folder name (else `DatasetError`)."""
    names = tuple(class_names)
    if len(names) != 2 or len(set(names)) != 2:
        raise DatasetError(f"the dataset needs two different class names, not {names}")
    for name in names:
        if not isinstance(name, str) or not _CLASS_NAME.fullmatch(name):
            raise DatasetError(f"a class name must be a short folder name, not {name!r}")
        if name == NEITHER:
            raise DatasetError(f"{NEITHER!r} is the answer for neither class, not a class name")
    return names  # type: ignore[return-value]


def answers(class_names: Iterable[str]) -> tuple[str, ...]:
    """The labels a vote may give: the class names and `NEITHER`."""
    return (*class_names, NEITHER)


def is_holdout(sha256: str) -> bool:
    """Whether the image with this SHA-256 (hex) belongs to the holdout."""
    return int(sha256[:8], 16) % 100 < HOLDOUT_PERCENT


def split_of(sha256: str) -> str:
    """ "holdout" or "train"."""
    return "holdout" if is_holdout(sha256) else "train"


@dataclass(frozen=True)
class Tally:
    """The votes on one image and the label they give it."""

    votes: dict[str, int]  # label -> votes, everyone's (each class name present, 0 if none;
    # NEITHER only when voted)
    moderator_votes: dict[str, int]  # label -> the moderators' votes only
    label: str | None  # None: no votes, or a tie at the deciding level

    @property
    def conflict(self) -> bool:
        """Voted on, but without a majority where it counts."""
        return self.label is None and any(self.votes.values())


def tally(votes: Iterable[tuple[str, bool]], class_names: Iterable[str] = CLASS_NAMES) -> Tally:
    """Count `(label, moderator)` votes and decide the image's label by the rule above."""
    everyone: Counter[str] = Counter()
    moderators: Counter[str] = Counter()
    for label, moderator in votes:
        everyone[label] += 1
        if moderator:
            moderators[label] += 1
    deciding = moderators if moderators else everyone
    return Tally(
        votes=_with_zeros(everyone, class_names),
        moderator_votes=_with_zeros(moderators, class_names),
        label=majority(deciding),
    )


def majority(counts: Counter[str]) -> str | None:
    """The label with strictly more votes than any other; None when tied or empty."""
    ranked = counts.most_common(2)
    if not ranked or ranked[0][1] == 0:
        return None
    if len(ranked) == 2 and ranked[1][1] == ranked[0][1]:
        return None
    return ranked[0][0]


def _with_zeros(counts: Counter[str], class_names: Iterable[str]) -> dict[str, int]:
    result = {name: 0 for name in class_names}
    result.update(counts)
    return result
