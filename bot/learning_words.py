"""What the Learning cog says: the replies to clicks, `!teach`, `!dataset` and `!forget`, as
plain functions of what the dataset answered (tested without Discord)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot import asking
from bot.errors import scrub_paths, user_message
from dataset import DatasetError, Forgotten, Quota, Summary, Usage, UserSummary, VoteOutcome
from dataset.labels import NEITHER
from dataset.records import megabytes


def posted_text(forgotten: Forgotten) -> str:
    """What `!forget` deleted of the images the person posted that others had labelled."""
    if not forgotten.others_votes:
        return ""
    posts = plural(forgotten.posts, "image")
    labels = plural(forgotten.others_votes, "label")
    return f"The {posts} you posted went too, with the {labels} others gave them. "


def forget_question(in_server: bool) -> str:
    """`!forget`'s question before it deletes anything."""
    where = "in this server" if in_server else "in every server"
    return (
        f"Delete your labels and the images you posted {where}, with the labels others gave "
        "them? This cannot be undone."
    )


def forgotten_text(forgotten: Forgotten, where: str, prefix: str, *, in_server: bool) -> str:
    """`!forget`'s answer once confirmed: what it deleted, and where."""
    if not forgotten.votes and not forgotten.posts:
        return f"You have given me no labels or images {where}: there is nothing to delete."
    scope = (
        f"In this server only: `{prefix}forget` in a DM with me deletes what you gave in every "
        "server."
        if in_server
        else "In every server."
    )
    return (
        f"Deleted your {plural(forgotten.votes, 'label')} and "
        f"{plural(forgotten.images, 'image')} nobody else labelled. "
        f"{posted_text(forgotten)}{scope} "
        "Models trained before keep what they learned until the next retrain."
    )


def thanks(outcome: VoteOutcome, label: str, prefix: str) -> str:
    """The ephemeral answer to a click."""
    said = label.capitalize()
    if outcome.changed and outcome.previous:
        first = f"Changed your label from {outcome.previous.capitalize()} to **{said}**."
    elif outcome.previous == label:
        first = f"You had already said **{said}**: nothing changed."
    else:
        first = f"Thanks! Kept with your label, **{said}**."
    return f"{first} {standing(outcome, label)} `{prefix}forget` deletes what you gave."


@dataclass(frozen=True)
class Taught:
    """One file of a `!teach`: kept (`outcome`, and whether it is `new` to the server), or
    `refused` with the short reason why."""

    name: str
    outcome: VoteOutcome | None = None
    new: bool = False
    refused: str | None = None


def teach_summary(taught: Sequence[Taught], label: str) -> str:
    """`!teach`'s one line: taught, already known and refused (why, grouped), and, where an
    image's label is not the one given, which and why."""
    said = f"**{label.capitalize()}**"
    kept = [t for t in taught if t.outcome is not None]
    new = sum(t.new for t in kept)
    known = len(kept) - new
    if not kept:
        text = "Taught nothing"
    elif not new:
        text = f"Taught {said} on {plural(known, 'image')} I already knew"
    else:
        text = f"Taught {plural(new, 'new image')} as {said}"
        text += f", {known} already known" if known else ""
    reasons: dict[str, list[str]] = {}
    for t in taught:
        if t.refused is not None:
            reasons.setdefault(t.refused.rstrip("."), []).append(t.name)
    if reasons:
        refused = "; ".join(
            f"{', '.join(names[:3])}{_more(names)}: {why}" for why, names in reasons.items()
        )
        text += f"; refused {sum(map(len, reasons.values()))}, {refused}"
    text += "."
    if len(kept) == 1 and kept[0].outcome is not None:
        return f"{text} {standing(kept[0].outcome, label)}"
    other = [t for t in kept if t.outcome is not None and t.outcome.label != label]
    if other:
        shown = "; ".join(f"{t.name} {_stays(t.outcome)}" for t in other[:3] if t.outcome)
        text += f" Labelled otherwise: {shown}{_more(other)}."
    return text


def _more(items: Sequence[object]) -> str:
    return f" and {len(items) - 3} more" if len(items) > 3 else ""


def standing(outcome: VoteOutcome, label: str | None = None) -> str:
    """Where the image's votes stand; where they overrule `label` (the vote just given), why."""
    if outcome.label is None:
        return f"Its votes disagree ({_counts(outcome)}): it waits for a moderator."
    if label is None or outcome.label == label:
        return f"Its label: {outcome.label.capitalize()} ({_counts(outcome)})."
    return f"Its label {_stays(outcome)}."


def _stays(outcome: VoteOutcome) -> str:
    """The image's label against the vote just given, and why: a tie, the most votes, or a
    moderator's vote (which outweighs members': the only way fewer votes win)."""
    counts = _counts(outcome)
    if outcome.label is None:
        return f"waits for a moderator (votes disagree: {counts})"
    winner = outcome.label.capitalize()
    theirs = outcome.votes.get(outcome.label, 0)
    if theirs * 2 > sum(outcome.votes.values()):
        return f"stays {winner}: most votes say so ({counts})"
    return f"stays {winner}: a moderator's vote decided ({counts})"


def _counts(outcome: VoteOutcome) -> str:
    return ", ".join(f"{n} {name.capitalize()}" for name, n in sorted(outcome.votes.items()) if n)


def retrain_needs(
    counts: Mapping[str, Mapping[str, int]], class_names: Sequence[str], minimum: int, prefix: str
) -> str:
    """How many more labels each class needs outside the holdout before a `!retrain`."""
    short = {
        name: minimum - counts.get(name, {}).get("train", 0)
        for name in class_names
        if counts.get(name, {}).get("train", 0) < minimum
    }
    if not short:
        return f"-# Enough of each class for `{prefix}retrain`."
    needs = ", ".join(f"{n} more {name.capitalize()}" for name, n in short.items())
    return (
        f"-# Before `{prefix}retrain`: {needs} outside the holdout (`{prefix}dataset` says more)."
    )


def describe_summary(
    summary: Summary,
    collecting: bool,
    class_names: Sequence[str],
    prefix: str,
    *,
    minimum: int = 0,
    unsure: Sequence[tuple[float, str]] = (),
    min_voters: int = 1,
) -> str:
    """The `!dataset` reply in a server: what it holds, and what would help most (the labels a
    retrain needs per class, at least `minimum` outside the holdout; the `unsure` images); of
    the holdout, what judges new models (a label by `min_voters` members or a moderator)."""
    lines = ["**What I learn from**"]
    for name in class_names:
        counts = summary.counts.get(name, {})
        train, holdout = counts.get("train", 0), counts.get("holdout", 0)
        lines.append(
            f"- {name.capitalize()}: {train + holdout} ({train} to train, {holdout} held out)"
        )
    holdout = sum(summary.counts.get(name, {}).get("holdout", 0) for name in class_names)
    lines.append(
        f"- {summary.since_last_training} labelled since the last training; {holdout} held out "
        "to judge new models (never trained on)" + _waiting(summary, min_voters)
    )
    if summary.conflicts:
        shown = ", ".join(
            f"`{sha[:8]}` ({', '.join(f'{n} {k}' for k, n in votes.items())})"
            for sha, votes in summary.conflicts[:5]
        )
        lines.append(f"- {summary.conflict_count} with disagreeing votes: {shown}")
    if summary.contributors:
        lines.append(
            "- Top contributors here: "
            + ", ".join(f"<@{user}> ({n})" for user, n in summary.contributors)
        )
    lines += asking.describe_needs(summary.counts, class_names, minimum, unsure)
    state = "on" if collecting else "off"
    lines.append(
        f"-# Collection is {state} in this server. Kept: each labelled image once, and who "
        f"labelled it how. `{prefix}forget` deletes yours."
    )
    return "\n".join(lines)


def _waiting(summary: Summary, min_voters: int) -> str:
    """How many held-out images judge now and how many wait for more votes, if any wait."""
    judging, waiting = summary.vouched_holdout(min_voters)
    if not waiting:
        return ""
    more = "a second vote" if min_voters == 2 else f"votes from {min_voters} members"
    return f": {judging} judge now, {waiting} wait for {more} (or a moderator's)"


def describe_neither(summary: Summary, text: str) -> str:
    """`!dataset`'s text with the images labelled neither as their own count (after the
    classes' lines), when there are any: they are never counted as Jedi or Sith."""
    counts = summary.counts.get(NEITHER, {})
    train, holdout = counts.get("train", 0), counts.get("holdout", 0)
    if not train + holdout:
        return text
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if "labelled since the last" in line), 1)
    lines.insert(at, f"- Neither: {train + holdout} (images my model learns to refuse)")
    return "\n".join(lines)


def describe_usage(usage: Usage, quota: Quota) -> str:
    """What the server keeps against its quota (`!dataset`)."""
    return (
        f"-# Kept for this server: {usage.images:,} of at most {quota.images:,} images, "
        f"{megabytes(usage.bytes)} of {megabytes(quota.bytes)}."
    )


def describe_given(given: UserSummary, prefix: str) -> str:
    """`!dataset` in a DM: what this person gave, per server, in counts only."""
    if not given.votes and not given.images:
        return "You have given me no labels or images."
    lines = ["**What you gave me**"]
    for guild_id in sorted(set(given.votes) | set(given.images)):
        where = f"server {guild_id}" if guild_id else "no server"
        votes, images = given.votes.get(guild_id, 0), given.images.get(guild_id, 0)
        lines.append(f"- In {where}: {plural(votes, 'label')}, {plural(images, 'image')}")
    lines.append(f"-# `{prefix}forget` here deletes all of it; in a server, what you gave there.")
    return "\n".join(lines)


def user_line(error: BaseException) -> str | None:
    if isinstance(error, DatasetError):
        return scrub_paths(str(error))
    return user_message(error)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
