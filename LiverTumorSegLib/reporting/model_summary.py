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
    if training.get("status"):
        lines.append(f"Status: {training['status']}.")
    if training.get("licences"):
        cases = "; ".join(f"{name} ({terms})" for name, terms in training["licences"].items())
        lines.append(f"Trained on: {cases}.")
    for run in training.get("chain", []):  # the runs that led to these weights, oldest first
        lines.append(f"Training, {run['run']}: {run.get('steps', '?')} steps on {run['hardware']} "
                     f"(weights {run['weights_sha256'][:12]}…).")
    if training.get("hardware") and not training.get("chain"):
        lines.append(f"Training: {training.get('steps', '?')} steps on {training['hardware']}, "
                     f"split {training.get('split', '?')}.")
    if training.get("parent"):
        lines.append(f"Started from: {training['parent']['name']} (weights "
                     f"{training['parent']['weights_sha256'][:12]}…).")
    summary = card.evaluation.get("held_out_summary")
    if summary:
        held_out = ", ".join(card.training.get("validation_cases", []))
        lines.append(f"Held-out accuracy ({held_out}): mean per-case Dice liver {_dice(summary, 'liver')},"
                     f" tumor {_dice(summary, 'tumor')}.")
    for key, value in card.evaluation.items():
        if key in ("held_out_summary", "held_out_per_case", "best_epoch"):
            continue
        lines.extend(_evaluation_lines(key.replace("_", " "), value))
    return lines


def _evaluation_lines(title: str, value) -> list[str]:
    """One line per scored case of a card's evaluation entry (a case, or cases by name)."""
    if not isinstance(value, dict):
        return [f"{title}: {value}"]
    if "liver_dice" in value:
        return [f"{title}: {_scores(value)}" + (f" ({value['what']})" if "what" in value else "")]
    lines = [f"{title}" + (f" ({value['what']}):" if "what" in value else ":")]
    lines.extend(f"  {name}: {_scores(scores)}" for name, scores in value.items()
                 if isinstance(scores, dict))
    return lines


def _scores(scores: dict) -> str:
    text = f"liver Dice {scores['liver_dice']:.3f}, tumor Dice {scores['tumor_dice']:.3f}"
    if "lesions_predicted" in scores:
        text += (f", lesions found {scores.get('lesions_found', '?')}/{scores.get('lesions_true', '?')}"
                 f", {scores['lesions_predicted']} predicted")
    return text
