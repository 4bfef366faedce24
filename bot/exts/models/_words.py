"""What `!retrain` and `!model` say about a training: its progress, its outcome, and the lock."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dataset import TrainingRecord
from dataset.labels import HOLDOUT_PERCENT
from model.compare import Comparison
from training.protocol import (
    DEFAULT_EPOCHS,
    EpochEvent,
    Stage,
    StageEvent,
    Status,
    TrainerResult,
    last_stage,
)

UNCHANGED = "The current model and the dataset are unchanged."
THE_OPERATOR = "the operator"
# In a trainer's refusal: what would settle it, and its own "(folder) is unchanged" part.
_SETTLE = re.compile(r"about \d+ held-out images \(\d+ more\) would settle it[^;]*")
_UNCHANGED_PART = re.compile(r";[^;]*(?:is unchanged|keeps it)[^;]*$")
# A version's notes as `!retrain` wrote them (before, with the name of who asked).
_RETRAINED = re.compile(r"retrained from Discord(?: by .*?)? \(training (\d+)\)")


@dataclass(frozen=True)
class RetrainOptions:
    epochs: int = DEFAULT_EPOCHS
    force: bool = False


def progress_text(
    events: list[StageEvent | EpochEvent],
    options: RetrainOptions | None,
    mention: str,
    prefix: str,
) -> str:
    """The progress message while the trainer runs, from its progress events so far."""
    head = f"**Training** a new model for {mention}"
    if options is not None and options.force:
        head += " (force: published even if not surely better)"
    state = "starting the trainer"
    stage = last_stage(events)
    if stage is not None:
        state = stage.label
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    if epochs and stage in (None, Stage.TRAINING):
        last = epochs[-1]
        state = f"epoch {last.epoch}/{last.epochs}"
        if last.val_accuracy is not None:
            state += f" · validation accuracy {last.val_accuracy:.1%}"
        state += f" · about {_duration(last.eta_s)} left"
    return (
        f"{head}: {state}.\n-# The current model keeps serving meanwhile; "
        f"`{prefix}retrain cancel` stops the training."
    )


NOT_BETTER, WORSE = "not surely better than", "worse than"
NO_HOLDOUT = (
    f"there are no held-out images to judge it on yet (one labelled image in "
    f"{100 // HOLDOUT_PERCENT} is held out)"
)


def refused_text(
    current: str, figures: str, unchanged: str, retrain: str, prefix: str, verdict: str | None
) -> str:
    """A candidate the gate refused, in one short reply: what happened (`verdict` against
    `current`; None: nothing to judge it on), the `figures`, and what to do next (`retrain`:
    the command that trains again; its `force` publishes anyway)."""
    what = f"the new model is {verdict} {current} on the held-out images" if verdict else NO_HOLDOUT
    return (
        f"**Not published**: {what}. {figures} {unchanged} Next: label more images "
        f"(`{prefix}dataset` says which help most), then `{prefix}{retrain}` again; "
        f"`{prefix}{retrain} force` publishes it anyway."
    ).replace("  ", " ")


def gate_verdict(comparison: Comparison | None) -> str | None:
    """How the candidate compared: `NOT_BETTER`, `WORSE`, or None with nothing to judge it on."""
    if comparison is None:
        return None
    return WORSE if comparison.worse else NOT_BETTER


def comparison_figures(comparison: Comparison | None, current: str) -> str:
    """Both accuracies, the difference and its interval, and how many held-out images would
    settle it ("" with no comparison)."""
    if comparison is None:
        return ""
    summary = comparison.summary(current)
    needed = comparison.images_needed()
    settle = ""
    if needed:
        settle = (
            f"; about {needed} held-out images ({needed - comparison.images} more) would settle "
            f"it, if the models disagree as often as here ({comparison.gained + comparison.lost} "
            f"of {comparison.images})"
        )
    return f"{summary[0].upper()}{summary[1:]}, p = {comparison.p_value:.2f}{settle}."


def trainer_refusal(reason: str, comparison: str) -> tuple[str | None, str]:
    """The verdict and the figures of a trainer's refusal: its `comparison` (both accuracies)
    and what would settle it, from its `reason`; never the reason's model folder or advice."""
    if "no holdout images" in reason:
        return None, ""
    settle = _SETTLE.search(reason)
    figures = comparison.rstrip(".") + (f"; {settle.group()}" if settle else "")
    if not comparison:  # nothing compared: the reason says why, without its folder
        why = re.sub(r"^not published: ", "", reason, flags=re.IGNORECASE)
        figures = _UNCHANGED_PART.sub("", why).strip().rstrip(".")
        figures = figures[:1].upper() + figures[1:]
    verdict = WORSE if "worse on" in reason else NOT_BETTER
    return verdict, f"{figures}." if figures else ""


def final_text(result: TrainerResult, prefix: str, judged_by: str | None = None) -> str:
    """The progress message once the training has ended, however it ended; `judged_by` names
    the holdout that judged it."""
    reason = result.reason.rstrip(".")
    before, after = result.before, result.after
    comparison = ""
    if before and after and before.accuracy is not None and after.accuracy is not None:
        comparison = (
            f"Holdout accuracy {before.accuracy:.1%} → {after.accuracy:.1%} "
            f"({after.images} images never trained on"
            + (f", {judged_by}" if judged_by else "")
            + ")."
        )
    status = result.status
    if status == Status.PUBLISHED:
        lines = [f"**New model published: version {result.version}.** {comparison}"]
        calibration = result.calibration
        if calibration is not None and calibration.ece_after is not None:
            temperature = calibration.temperature
            lines.append(
                f"Calibration error {calibration.ece_before or 0:.1%} → "
                f"{calibration.ece_after:.1%}"
                + (f" (temperature {temperature:.2f})." if temperature is not None else ".")
            )
        ood = result.ood
        if ood is not None and ood.threshold is not None:
            refused = ood.validation_refused
            lines.append(
                f"Unlike-image threshold {ood.threshold:.2f}"
                + (f"; {refused:.1%} of validation images refused." if refused is not None else ".")
            )
        if reason:
            lines.append(f"-# {reason}.")
        lines.append(f"-# `{prefix}rollback` brings back the previous version.")
        return "\n".join(lines)
    if status == Status.REFUSED:
        verdict, figures = trainer_refusal(reason, comparison)
        current = "the current default model"
        return refused_text(current, figures, UNCHANGED, "retrain", prefix, verdict)
    if status == Status.CANCELLED:
        return f"**Training cancelled**: {reason or 'stopped'}. {UNCHANGED}"
    if status == Status.INTERRUPTED:
        return interrupted_text(reason, prefix)
    return f"**Training failed**: {reason or 'the trainer failed'}. {UNCHANGED}"


def interrupted_text(why: str, prefix: str, *, network: bool = False) -> str:
    """A training that its bot process did not see to the end (`network`: a server's network,
    which `!retrain network` starts again)."""
    if network:
        unchanged = "This server's model and its images are unchanged."
        return (
            f"**Training interrupted**: {why}. {unchanged} `{prefix}retrain network` starts again."
        )
    return f"**Training interrupted**: {why}. {UNCHANGED} `{prefix}retrain` starts again."


def queued_text(
    place: int | None, mention: str, prefix: str, cancel: str = "retrain shared cancel"
) -> str:
    """The reply to a `!retrain` that waits for a free slot: its place in the queue (`cancel`:
    the command that takes it out)."""
    where = f"place {place}" if place is not None else "waiting"
    return (
        f"**Queued**: a new model for {mention} trains when a slot is free ({where} in the "
        f"queue; other trainings use every slot). This message shows it when it starts.\n"
        f"-# `{prefix}{cancel}` takes it out of the queue."
    )


def queued_line(record: TrainingRecord, place: int, *, operator: bool = True) -> str:
    """`!model`'s line about the training that waits in the queue."""
    since = int(record.started_at.timestamp())
    by = f"<@{record.user_id}>" if operator else THE_OPERATOR
    return f"-# A training waits in the queue: place {place}, asked by {by} <t:{since}:R>."


def busy_text(
    record: TrainingRecord,
    prefix: str,
    place: int | None = None,
    cancel: str = "retrain shared cancel",
) -> str:
    """The answer to a `!retrain` while another training holds the lock, or (`place`) waits
    in the queue (`cancel`: the command that takes it out)."""
    started = int(record.started_at.timestamp())
    if place is not None:
        return (
            f"A training of this model already waits in the queue (place {place}, asked by "
            f"<@{record.user_id}> <t:{started}:R>); `{prefix}{cancel}` takes it "
            "out of the queue."
        )
    return (
        f"A training is already running (started by <@{record.user_id}> <t:{started}:R>); "
        f"`{prefix}retrain cancel` stops it."
    )


def running_text(
    record: TrainingRecord, local: bool, cancelled_by: str | None, *, operator: bool = True
) -> str:
    """`!model`'s line about the training that runs (here or, not `local`, elsewhere); not
    for an `operator`: the shared model's, by "the operator", without names or hosts."""
    started = int(record.started_at.timestamp())
    if not operator:
        text = f"-# A training is running, started by {THE_OPERATOR} <t:{started}:R>"
        if cancelled_by is not None:
            text += f"; {THE_OPERATOR} asked it to stop"
        return text + "."
    text = f"-# A training is running, started by <@{record.user_id}> <t:{started}:R>"
    if not local:
        text += f", in another of my processes ({record.host}, pid {record.pid})"
    if cancelled_by is not None:
        text += f"; {cancelled_by} asked it to stop"
    return text + "."


def public_notes(notes: str) -> str:
    """A shared model version's notes as any server sees them: who retrained it is "the
    operator" (versions made before kept the name of who asked)."""
    return _RETRAINED.sub(rf"retrained by {THE_OPERATOR} (training \1)", notes)


def training_line(record: TrainingRecord, where: str, whose: str = "the default model") -> str:
    """An operator's `!model shared` line about one training: how it ended, who ran it, where,
    when, and which model (`whose`) of which kind it made."""
    started = int(record.started_at.timestamp())
    ended = record.status + (f" version {record.version}" if record.version is not None else "")
    kind = "a head" if record.kind == "head" else "a full training"
    return (
        f"-# training {record.id}: {ended}, by <@{record.user_id}> in {where} <t:{started}:R>"
        f" ({whose}, {kind})"
    )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.0f} min"
