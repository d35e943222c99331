"""`livertumorseg train` and `livertumorseg evaluate-model`."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

from ..errors import LiverTumorSegError
from ..inference import DEVICE_CHOICES
from ..resources import TRAINING_CONFIG


def command_train(args: argparse.Namespace) -> int:
    from .config import TrainingConfig, parse_architecture
    from .trainer import train

    if args.output is None and args.resume is None:
        raise LiverTumorSegError("Give an output folder (-o OUTDIR), or --resume RUN_FOLDER.")
    if args.resume is not None and args.init_weights is not None:
        raise LiverTumorSegError("--init-weights starts a new run from a trained model and --resume "
                                 "continues a run from its checkpoint; give one of them.")
    config = TrainingConfig.load(
        Path(args.config), seed=args.seed, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size, crop_size=args.crop_size, learning_rate=args.learning_rate,
        loss=args.loss, schedule=args.schedule, synthetic_tumor_rate=args.synthetic_tumor_rate,
        lesion_shapes=args.lesion_shapes, real_shape_rate=args.real_shape_rate,
        border_negative_weight=args.border_negative_weight)
    if args.arch:
        architecture = parse_architecture(args.arch)
        config = dataclasses.replace(config, architecture=architecture,
                                     name=f"{config.name}-{args.arch.replace(':', '-')}")
    if args.no_augment:
        config = dataclasses.replace(config, augment=False)
    if args.baseline:
        synthetic = config.synthetic_tumor_rate if args.synthetic_tumor_rate is not None else 0.0
        config = dataclasses.replace(
            config, name=f"{config.name}-baseline", synthetic_tumor_rate=synthetic,
            input=dataclasses.replace(config.input, windows=config.input.windows[:1],
                                      histogram_channel=False, context_slices=0))
    card = train(config, Path(args.data), Path(args.resume or args.output), device=args.device,
                 folds=args.folds, fold=args.fold, validation=tuple(args.validation or ()),
                 time_limit_minutes=args.time_limit, checkpoint_minutes=args.checkpoint_minutes,
                 resume=args.resume is not None,
                 init_weights=Path(args.init_weights) if args.init_weights else None,
                 command=shlex.join(["livertumorseg", *sys.argv[1:]]))
    if card is not None:
        print(f"wrote {card.path} and {card.weights_path}")
    return 0


def command_evaluate_model(args: argparse.Namespace) -> int:
    from ..evaluation import write_evaluation
    from ..pipeline import Segmenter
    from ..reporting.tables import text_table
    from ..workflow import ensure_writable_directory, segment_and_score
    from .dataset import find_cases

    output = Path(args.output)
    ensure_writable_directory(output)
    cases = [c for c in find_cases(Path(args.data)) if not args.cases or c.name in args.cases]
    for case in [c for c in cases if not c.label_is_truth]:
        print(f"skipping {case.name}: its label was made by a model, not a reference")
    cases = [c for c in cases if c.label_is_truth]
    from ..inference.test_time import DEFAULT_SHIFTS

    segmenter = Segmenter(Path(args.model) if args.model else None, device=args.device,
                          tta_shifts=DEFAULT_SHIFTS if args.tta else ())
    metrics = segment_and_score(segmenter, [(c.name, c.ct, c.label) for c in cases],
                                output / "predictions")
    summary = write_evaluation(output, metrics)
    print(text_table(["case", "liver Dice", "tumor Dice", "lesions found", "lesion precision"],
                     [[n, m["liver"]["dice"], m["tumor"]["dice"],
                       f"{m['lesions']['lesions_found']}/{m['lesions']['lesions_true']}",
                       m["lesions"]["lesion_precision"]] for n, m in metrics.items()]))
    print(f"mean liver Dice {summary['liver']['mean_dice']:.3f}, mean tumor Dice "
          f"{summary['tumor']['mean_dice']:.3f}; wrote {output / 'evaluation.json'}")
    return 0


def add_training_commands(commands) -> None:
    """Register the training sub-commands on the main parser's sub-parsers."""
    train = commands.add_parser("train", help="train a model on a folder of CT/label pairs")
    train.add_argument("data", help="folder of <case>_ct.nii.gz + <case>_label.nii.gz, or LiTS "
                                    "volume-N.nii + segmentation-N.nii")
    train.add_argument("-o", "--output", help="folder for the model, logs, plots and checkpoints")
    train.add_argument("--config", default=str(TRAINING_CONFIG),
                       help="training config JSON (default: the shipped model's)")
    train.add_argument("--arch", help="unet-resnet50 (default), deeplabv3plus-resnet101, unet-vgg16 "
                                      "or Class:encoder")
    train.add_argument("--baseline", action="store_true",
                       help="plain baseline: one window, no 2.5D, no histogram, no synthetic tumors "
                            "(unless --synthetic-tumor-rate is given)")
    train.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    train.add_argument("--init-weights", metavar="CARD.json",
                       help="start from this trained model's weights (e.g. the bundled "
                            "Resources/Model/model_card.json) with a fresh optimizer, to fine-tune "
                            "or continue it; its architecture and input must equal the config's")
    split = train.add_argument_group("split (by patient)")
    split.add_argument("--folds", type=int, default=5, help="k of k-fold; 1 = train on every case")
    split.add_argument("--fold", type=int, default=0, help="which fold is held out")
    split.add_argument("--validation", nargs="+", metavar="CASE", help="explicit held-out cases")
    for flag, kind in (("--seed", int), ("--epochs", int), ("--steps-per-epoch", int),
                       ("--batch-size", int), ("--crop-size", int), ("--learning-rate", float),
                       ("--synthetic-tumor-rate", float)):
        train.add_argument(flag, type=kind, help="override the config's value")
    lesions = train.add_argument_group("synthetic lesions and negatives")
    lesions.add_argument("--lesion-shapes", metavar="DIR",
                         help="folder of label maps (*_label.nii.gz, 2 = tumour) whose tumours shape "
                              "a share of the synthetic lesions, e.g. ../shared/data/ircadb_masks")
    lesions.add_argument("--real-shape-rate", type=float,
                         help="share of synthetic lesions shaped like a real one (default 0.5)")
    lesions.add_argument("--border-negative-weight", type=float, metavar="W",
                         help="loss weight of non-tumour pixels within 10 mm of the liver's border "
                              "(default 1: no extra weight)")
    train.add_argument("--loss", choices=("ce_dice", "tversky"))
    train.add_argument("--schedule", choices=("onecycle", "cosine", "plateau"))
    train.add_argument("--no-augment", action="store_true", help="switch augmentation off")
    run = train.add_argument_group("time and interruptions")
    run.add_argument("--time-limit", type=float, metavar="MINUTES",
                     help="measure throughput first, then make as many steps as end (with validation "
                          "and export) inside this limit; the steps chosen go to the log and the card")
    run.add_argument("--checkpoint-minutes", type=float, default=10.0, metavar="MINUTES",
                     help="save a checkpoint this often (default 10)")
    run.add_argument("--resume", metavar="RUN_FOLDER",
                     help="continue the run in this folder from its checkpoint (its own config, "
                          "split and plan)")
    train.set_defaults(handler=command_train)

    evaluate = commands.add_parser("evaluate-model",
                                   help="segment every case of a folder and score it")
    evaluate.add_argument("data", help="folder of CT/label pairs")
    evaluate.add_argument("--model", metavar="CARD.json", help="default: the bundled model")
    evaluate.add_argument("--cases", nargs="+", metavar="CASE", help="only these cases")
    evaluate.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    evaluate.add_argument("--tta", action="store_true",
                          help="test-time augmentation, as `segment --tta`")
    evaluate.add_argument("-o", "--output", default="livertumorseg_model_evaluation")
    evaluate.set_defaults(handler=command_evaluate_model)
