"""The `livertumorseg` command line: segment, evaluate, demo, info, train."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import warnings
from pathlib import Path
from typing import Sequence

from .errors import IntensityError, LiverTumorSegError, ModelError
from .inference import DEVICE_CHOICES, RUNTIME_CHOICES
from .model.card import ModelCard, PostprocessingSpec, resolve_model_card
from .resources import SAMPLE_CT, SAMPLE_LABEL
from .training.cli import add_training_commands


def _model_card(path: str | None) -> ModelCard:
    return resolve_model_card(Path(path) if path else None)


def _progress_bar(label: str):
    """A tqdm bar on a terminal, nothing otherwise; returns (callback, close)."""
    from tqdm import tqdm

    bar = tqdm(total=100, desc=label, disable=not sys.stderr.isatty(), leave=False,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    def update(fraction: float, message: str) -> None:
        bar.n = round(100 * fraction)
        bar.set_postfix_str(message, refresh=True)

    return update, bar.close


def _postprocessing(card: ModelCard, args: argparse.Namespace) -> PostprocessingSpec:
    """The card's post-processing with the command-line options that were given."""
    return card.postprocessing.with_overrides(
        min_lesion_volume_mm3=args.min_lesion_mm3, closing_radius_mm=args.closing_mm,
        keep_largest_liver=False if args.all_liver_components else None)


def describe_error(exc: BaseException) -> tuple[str, int]:
    """The one line to print for an error, and the exit status it stands for (2: a problem the
    user can act on, 1: an unexpected failure)."""
    if isinstance(exc, IntensityError):
        return f"{exc} If its values are right, pass --force to segment it anyway.", 2
    if isinstance(exc, LiverTumorSegError):
        return str(exc), 2
    if isinstance(exc, MemoryError):
        return ("out of memory; close other programs, or segment the volume on a machine with more "
                "RAM."), 2
    return (f"unexpected {type(exc).__name__}: {exc} (set LIVERTUMORSEG_DEBUG=1 for the traceback, "
            "and please report it)"), 1


def _segment_cases(args: argparse.Namespace, cases: Sequence[Path],
                   output_dir: Path) -> tuple[list, int]:
    """Segment every case, going on after a failed one; return the outcomes and the exit status
    (0 when every case succeeded, else the most serious of `describe_error`'s)."""
    from concurrent.futures import ThreadPoolExecutor

    from .inputs import case_name, read_input
    from .reporting.batch import CaseOutcome
    from .reporting.tables import statistics_summary
    from .workflow import segment_input

    with ThreadPoolExecutor(max_workers=1) as reader:
        # The first input is read while torch loads (decompression runs outside Python's lock);
        # the others when their turn comes, so one volume is in memory.
        first = reader.submit(read_input, cases[0], args.series) if cases else None
        from .inference.test_time import DEFAULT_SHIFTS
        from .pipeline import Segmenter

        card = _model_card(args.model)
        # A single input that its reading refuses exits without building the model; a batch
        # builds it at once, for the cases after a refused one.
        segmenter = None
        if len(cases) != 1 or first.exception() is None:
            segmenter = Segmenter(card, device=args.device, runtime=args.runtime,
                                  tta_shifts=DEFAULT_SHIFTS if args.tta else ())
            print(f"Model {card.name} loaded in {segmenter.load_seconds:.1f} s on "
                  f"{segmenter.predictor.describe()}", file=sys.stderr)
    postprocessing = _postprocessing(card, args)
    outcomes, status = [], 0
    for index, path in enumerate(cases):
        name = case_name(path)
        update, close = _progress_bar(name)
        try:
            case, first = (first.result() if index == 0 else read_input(path, args.series)), None
            result, outputs = segment_input(segmenter, case, output_dir, overlay=args.overlay,
                                            force=args.force, postprocessing=postprocessing,
                                            progress=update, dicom_seg=args.dicom_seg,
                                            probabilities=args.probabilities)
            case = None  # the volume is not kept while the next input is read
        except Exception as exc:  # noqa: BLE001 - a failed case never stops the batch
            message, code = describe_error(exc)
            if code == 1 and os.environ.get("LIVERTUMORSEG_DEBUG"):
                raise
            print(f"error: {name}: {message}" if len(cases) > 1 else f"error: {message}",
                  file=sys.stderr)
            outcomes.append(CaseOutcome(name, path, error=message))
            status = min(status or code, code)
            continue
        finally:
            close()
        print(statistics_summary(name, result.statistics))
        written = [outputs.segmentation, outputs.statistics]
        written += [outputs.overlay] if args.overlay else []
        written += [outputs.dicom_seg] if args.dicom_seg else []
        written += [outputs.probabilities] if args.probabilities else []
        print("  wrote " + ", ".join(map(str, written)))
        outcomes.append(CaseOutcome(name, path, result.statistics))
    return outcomes, status


def _report_batch(outcomes: list, output_dir: Path) -> None:
    """Print the table of the segmented cases and the failed ones with why; write the report."""
    from .reporting.batch import write_batch_report
    from .reporting.tables import text_table

    done = [case for case in outcomes if case.statistics]
    if done:
        print(text_table(["input", "liver mL", "tumors", "tumor mL", "burden %", "seconds",
                          "warnings"],
                         [[c.name, c.statistics["liver_volume_ml"], c.statistics["tumor_count"],
                           c.statistics["tumor_volume_ml"], c.statistics["tumor_burden_percent"],
                           c.statistics["seconds"], len(c.statistics["warnings"])] for c in done]))
    failed = [case for case in outcomes if case.error]
    print(f"{len(done)} of {len(outcomes)} cases segmented"
          + (f"; {len(failed)} failed:" if failed else "."))
    for case in failed:
        print(f"  {case.name}: {case.error}")
    summary, lesions = write_batch_report(output_dir, outcomes)
    print(f"wrote {summary} and {lesions}")


def command_segment(args: argparse.Namespace) -> int:
    from .inputs import check_dicom_seg_inputs, expand_inputs
    from .workflow import output_directory

    cases = expand_inputs(args.inputs)
    if args.dicom_seg:
        check_dicom_seg_inputs(cases)
    with output_directory(Path(args.output)) as output_dir:
        outcomes, status = _segment_cases(args, cases, output_dir)
        if len(outcomes) > 1:
            _report_batch(outcomes, output_dir)
    return status


def command_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_files, evaluation_rows, match_cases, write_evaluation
    from .reporting.tables import text_table
    from .workflow import output_directory

    with output_directory(Path(args.output)) as output_dir:
        cases = evaluate_files(match_cases(Path(args.pred), Path(args.truth)))
        summary = write_evaluation(output_dir, cases)
    headers, rows = evaluation_rows(cases)
    keep = [i for i, h in enumerate(headers) if h == "case" or h.endswith(
        ("_dice", "_assd_mm", "_hd95_mm", "lesion_recall", "lesion_precision"))]
    print(text_table([headers[i] for i in keep], [[row[i] for i in keep] for row in rows]))
    print(text_table(["structure", "mean Dice", "global Dice", "mean HD95 mm"],
                     [[s, summary[s]["mean_dice"], summary[s]["global_dice"],
                       summary[s]["mean_hd95_mm"]] for s in ("liver", "tumor")]))
    lesions = summary["lesions"]
    print(f"lesions: {lesions['lesions_found']}/{lesions['lesions_true']} found, recall "
          f"{_fmt(lesions['lesion_recall'])}, precision {_fmt(lesions['lesion_precision'])}")
    print(f"wrote {output_dir / 'evaluation.csv'}, evaluation.json and evaluation_dice.png")
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def command_demo(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_files
    from .workflow import CaseOutputs, output_directory

    if not SAMPLE_CT.is_file():
        raise LiverTumorSegError(f"The demo sample {SAMPLE_CT} is missing; reinstall the project.")
    print(sample_geometry_line())
    with output_directory(Path(args.output)) as output_dir:
        _, status = _segment_cases(args, [SAMPLE_CT], output_dir)
    if status:
        return status
    segmentation = CaseOutputs.for_input(SAMPLE_CT, Path(args.output)).segmentation
    metrics = evaluate_files([("lits117_crop", segmentation, SAMPLE_LABEL)])["lits117_crop"]
    print(f"Against the sample's reference label (held out from training): liver Dice "
          f"{metrics['liver']['dice']:.3f}, tumor Dice {metrics['tumor']['dice']:.3f}, lesions found "
          f"{metrics['lesions']['lesions_found']}/{metrics['lesions']['lesions_true']} (precision "
          f"{_fmt(metrics['lesions']['lesion_precision'])})")
    return 0


def sample_geometry_line() -> str:
    """Where the demo sample's voxel size comes from (its header holds an estimate)."""
    import nibabel

    spacing = " x ".join(f"{float(s):g}" for s in nibabel.load(SAMPLE_CT).header.get_zooms()[:3])
    return (f"Demo sample: LiTS volume 117, cropped to the liver and resampled to 128³ by a third "
            f"party; its true voxel size is unknown, and the header's {spacing} mm is an estimate "
            f"from its anatomy (vertebrae, aorta): {SAMPLE_CT.parent / 'ATTRIBUTION.md'}")


def command_info(args: argparse.Namespace) -> int:
    import numpy
    import torch

    from .inference import describe_runtime, resolve_device

    print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA build "
          f"{torch.version.cuda}), numpy {numpy.__version__}")
    print(f"device 'auto' would use: {describe_runtime(resolve_device('auto'))}")
    try:
        card = _model_card(args.model)
    except ModelError as exc:
        print(f"model: {exc}")
        return 0
    from .reporting.model_summary import model_card_summary

    print(f"model card: {card.path}")
    for line in model_card_summary(card):
        print(f"  {line}")
    print(f"  Weights: {card.weights_path} (SHA-256 {card.weights_sha256[:16]}…)")
    return 0


def command_web(args: argparse.Namespace) -> int:
    """Start the web app; its package (and trame) is imported only here."""
    try:
        from .web.server import serve
    except ImportError as exc:
        raise LiverTumorSegError(f"The web app needs the web extra ({exc.name} is missing); install "
                                 "it with: pip install -e '.[web]'") from exc
    return serve(host=args.host, port=args.port, data=args.data, device=args.device,
                 max_upload_mb=args.max_upload_mb, model=args.model)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="CARD.json",
                        help="model card of the model to use (default: the bundled model)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                        help="where the network runs (default: auto = CUDA if available)")
    parser.add_argument("--runtime", choices=RUNTIME_CHOICES, default="auto",
                        help="what runs the network (default: auto = OpenVINO on the CPU when "
                             "installed, else PyTorch)")
    parser.add_argument("--tta", action="store_true",
                        help="test-time augmentation: the fine pass also sees each slice shifted "
                             "in-plane two ways and averages (about 1.8 times the segmentation time)")
    parser.add_argument("-o", "--output", default="livertumorseg_output", metavar="OUTDIR",
                        help="output folder (created if needed)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livertumorseg",
                                     description="Segment the liver and liver tumors in abdominal CT.")
    commands = parser.add_subparsers(dest="command", required=True)

    segment = commands.add_parser("segment", help="segment CT files (NIfTI, NRRD) or DICOM series")
    segment.add_argument("inputs", nargs="+", metavar="INPUT",
                         help="CT files, DICOM series folders, or folders whose NIfTI/NRRD volumes "
                              "and DICOM series subfolders are all segmented")
    _add_model_options(segment)
    segment.add_argument("--overlay", action="store_true", help="also write <stem>_overlay.png")
    segment.add_argument("--force", action="store_true",
                         help="segment even when intensities do not look like CT Hounsfield units")
    segment.add_argument("--min-lesion-mm3", type=float, metavar="MM3",
                         help="drop tumor components smaller than this (default: model card's)")
    segment.add_argument("--closing-mm", type=float, metavar="MM",
                         help="morphological closing radius in mm (default: model card's)")
    segment.add_argument("--all-liver-components", action="store_true",
                         help="keep every liver component, not only the largest")
    segment.add_argument("--series", metavar="UID",
                         help="the SeriesInstanceUID to segment in a folder holding several series")
    segment.add_argument("--dicom-seg", action="store_true",
                         help="also write <name>_seg.dcm, a DICOM Segmentation (DICOM input only)")
    segment.add_argument("--probabilities", action="store_true",
                         help="also write <name>_probabilities.nii.gz: the liver and tumor "
                              "probabilities (uint8, softmax x 255) on the input's grid")
    segment.set_defaults(handler=command_segment)

    evaluate = commands.add_parser("evaluate", help="score predictions against reference labels")
    evaluate.add_argument("--pred", required=True, help="predicted label file or folder")
    evaluate.add_argument("--truth", required=True, help="reference label file or folder")
    evaluate.add_argument("-o", "--output", default="livertumorseg_evaluation", metavar="OUTDIR")
    evaluate.set_defaults(handler=command_evaluate)

    demo = commands.add_parser("demo", help="segment the embedded sample and score it")
    _add_model_options(demo)
    demo.set_defaults(handler=command_demo, output="livertumorseg_demo", overlay=True, force=False,
                      min_lesion_mm3=None, closing_mm=None, all_liver_components=False,
                      series=None, dicom_seg=False, probabilities=False)

    info = commands.add_parser("info", help="model card summary, device and versions")
    info.add_argument("--model", metavar="CARD.json")
    info.set_defaults(handler=command_info)

    web = commands.add_parser("web", help="start the web app: open, segment, correct and download "
                                           "CT in a browser")
    web.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1: this machine only)")
    web.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    web.add_argument("--data", metavar="DIR",
                     help="offer every CT volume and DICOM series under DIR (and nothing outside)")
    web.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                     help="where the network runs (default: auto = CUDA if available)")
    web.add_argument("--max-upload-mb", type=int, default=2048, metavar="MB",
                     help="largest upload accepted, in MB (default 2048)")
    web.add_argument("--model", metavar="CARD.json",
                     help="model card of the model to use (default: the bundled model)")
    web.set_defaults(handler=command_web)

    add_training_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `livertumorseg` console script."""
    args = build_parser().parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    warnings.formatwarning = lambda message, category, *rest: f"warning: {message}\n"
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("error: interrupted; no partial output was left behind.", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for users; the traceback on request
        message, code = describe_error(exc)
        if code == 1 and os.environ.get("LIVERTUMORSEG_DEBUG"):
            raise
        print(f"error: {message}", file=sys.stderr)
        return code


def run() -> None:
    """The console script: `main`, then exit at once. Every output is complete and closed by then;
    skipping the interpreter's teardown (unloading torch and OpenVINO took 0.8 s) makes the command
    return that much sooner."""
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    run()
