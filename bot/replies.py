"""What the bot says: verdicts, confidence in words, and per-image problems."""

from __future__ import annotations

from model.runtime import Prediction

SCORE_NOTE = "-# The score is the network's probability of **Sith**: 0 is Jedi, 1 is Sith."

OOD_POLICIES = ("refuse", "warn", "off")
"""What to say about an image the detector finds unlike the training data: `refuse` the verdict,
give it with a `warn`ing, or ignore the detector (`off`)."""

UNLIKE = "this doesn't look like what I learned from"

RESTARTING = "I'm restarting. Try again in a moment."
NOT_ENABLED = "I'm not enabled in this channel."


def confidence_words(confidence: float) -> str:
    if confidence >= 0.9:
        return "very sure"
    if confidence >= 0.75:
        return "fairly sure"
    return "leaning"


def is_uncertain(prediction: Prediction, band: float) -> bool:
    """Within `band` of 0.5: too close to call."""
    return abs(prediction.score - 0.5) < band


def is_unlike(prediction: Prediction, policy: str) -> bool:
    """Whether the detector found the image unlike the training data, and we heed it."""
    return policy != "off" and prediction.in_distribution is False


def verdict(prediction: Prediction, band: float, policy: str = "refuse") -> str:
    """E.g. `**Sith** - score 0.973 (very sure, 97%)`, or the honest refusal."""
    label = prediction.label.capitalize()
    if is_unlike(prediction, policy) and policy == "refuse":
        return (
            f"**Not a Jedi or a Sith?** - {UNLIKE} "
            f"(it would have said {label}, {prediction.score:.3f})"
        )
    percent = f"{prediction.confidence:.0%}"
    if is_uncertain(prediction, band):
        line = f"**Can't tell** - score {prediction.score:.3f} (too close to call, leaning {label})"
    else:
        words = confidence_words(prediction.confidence)
        line = f"**{label}** - score {prediction.score:.3f} ({words}, {percent})"
    if is_unlike(prediction, policy):
        line += f" - but {UNLIKE}, so take it lightly"
    return line


def classify_reply(
    results: list[tuple[str, Prediction | Exception]],
    band: float,
    skipped: int = 0,
    policy: str = "refuse",
) -> str:
    """The reply to `!jedisith`: one line per image, in the order they were attached."""
    lines = []
    many = len(results) > 1
    for index, (filename, outcome) in enumerate(results, start=1):
        prefix = f"{index}. `{_clean(filename)}`: " if many else ""
        if isinstance(outcome, Prediction):
            lines.append(prefix + verdict(outcome, band, policy))
        else:
            name = "" if many else f"`{_clean(filename)}`: "
            lines.append(f"{prefix}{name}{outcome}")
    if skipped:
        lines.append(f"-# I looked at the first {len(results)} files only ({skipped} more left).")
    if any(isinstance(outcome, Prediction) for _, outcome in results):
        lines.append(SCORE_NOTE)
    return "\n".join(lines)


def features_caption(
    filename: str, prediction: Prediction, layers: list[int] | None, policy: str = "refuse"
) -> str:
    which = "all five convolutions" if not layers else f"convolution {layers[0]}"
    if is_unlike(prediction, policy):
        said = (
            f"{UNLIKE[0].upper()}{UNLIKE[1:]} (it would have said {prediction.label.capitalize()}, "
        )
        said += f"{prediction.score:.3f}), so the verdict means little."
    else:
        said = f"{prediction.label.capitalize()}, score {prediction.score:.3f}."
    return (
        f"What the network sees in `{_clean(filename)}` ({which}): {said} "
        "Bright cells are where a filter responds."
    )


def features_title(prediction: Prediction, policy: str = "refuse") -> str:
    """The title drawn on the feature-map image."""
    title = f"{prediction.label.capitalize()} {prediction.score:.3f}"
    return f"{title} (unlike the training images)" if is_unlike(prediction, policy) else title


def _clean(filename: str) -> str:
    """A file name safe inside inline code."""
    return filename.replace("`", "'")[:80]
