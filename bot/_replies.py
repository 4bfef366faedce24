"""What the bot says: verdicts, confidence in words, and per-image problems."""

from __future__ import annotations

from model.runtime import Prediction

SCORE_NOTE = "-# The score is the network's probability of **Sith**: 0 is Jedi, 1 is Sith."


def confidence_words(confidence: float) -> str:
    if confidence >= 0.9:
        return "very sure"
    if confidence >= 0.75:
        return "fairly sure"
    return "leaning"


def is_uncertain(prediction: Prediction, band: float) -> bool:
    """Within `band` of 0.5: too close to call."""
    return abs(prediction.score - 0.5) < band


def verdict(prediction: Prediction, band: float) -> str:
    """E.g. `**Sith** - score 0.973 (very sure, 97%)`."""
    label = prediction.label.capitalize()
    percent = f"{prediction.confidence:.0%}"
    if is_uncertain(prediction, band):
        return f"**Can't tell** - score {prediction.score:.3f} (too close to call, leaning {label})"
    words = confidence_words(prediction.confidence)
    return f"**{label}** - score {prediction.score:.3f} ({words}, {percent})"


def classify_reply(
    results: list[tuple[str, Prediction | Exception]], band: float, skipped: int = 0
) -> str:
    """The reply to `!jedisith`: one line per image, in the order they were attached."""
    lines = []
    many = len(results) > 1
    for index, (filename, outcome) in enumerate(results, start=1):
        prefix = f"{index}. `{_clean(filename)}`: " if many else ""
        if isinstance(outcome, Prediction):
            lines.append(prefix + verdict(outcome, band))
        else:
            name = "" if many else f"`{_clean(filename)}`: "
            lines.append(f"{prefix}{name}{outcome}")
    if skipped:
        lines.append(f"-# I looked at the first {len(results)} files only ({skipped} more left).")
    if any(isinstance(outcome, Prediction) for _, outcome in results):
        lines.append(SCORE_NOTE)
    return "\n".join(lines)


def features_caption(filename: str, prediction: Prediction, layers: list[int] | None) -> str:
    which = "all five convolutions" if not layers else f"convolution {layers[0]}"
    return (
        f"What the network sees in `{_clean(filename)}` ({which}): "
        f"{prediction.label.capitalize()}, score {prediction.score:.3f}. "
        "Bright cells are where a filter responds."
    )


def _clean(filename: str) -> str:
    """A file name safe inside inline code."""
    return filename.replace("`", "'")[:80]
