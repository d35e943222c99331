"""A model card in a few readable lines, for `livertumorseg info` and the Slicer module's help."""

from __future__ import annotations

from ..model.card import ModelCard


def _dice(summary: dict, structure: str) -> str:
    value = summary.get(structure, {}).get("mean_dice")
    return "-" if value is None else f"{value:.3f}"


def model_card_summary(card: ModelCard) -> list[str]:
    """Architecture, input, training data with licences, and held-out accuracy of a model."""
    spec = card.input
    windows = ", ".join(f"{w.name} W{w.width:g}/L{w.level:g}" for w in spec.windows)
    lines = [
        f"Model: {card.name} ({card.architecture.name} with a {card.architecture.encoder_name} "
        f"encoder).",
        f"Input: {windows}{', histogram channel' if spec.histogram_channel else ''}, "
        f"±{spec.context_slices} neighbouring slice(s), {spec.pixel_size_mm:g} mm pixels "
        f"({spec.in_channels} channels).",
    ]
    training = card.training
    if training.get("licences"):
        cases = "; ".join(f"{name} ({terms})" for name, terms in training["licences"].items())
        lines.append(f"Trained on: {cases}.")
    if training.get("hardware"):
        lines.append(f"Training: {training.get('steps', '?')} steps on {training['hardware']}, "
                     f"split {training.get('split', '?')}.")
    summary = card.evaluation.get("held_out_summary")
    if summary:
        held_out = ", ".join(card.training.get("validation_cases", []))
        lines.append(f"Held-out accuracy ({held_out}): mean per-case Dice liver {_dice(summary, 'liver')},"
                     f" tumor {_dice(summary, 'tumor')}.")
    for key, value in card.evaluation.items():
        if key not in ("held_out_summary", "held_out_per_case", "best_epoch"):
            lines.append(f"{key}: {value}")
    return lines
