"""Command lines of the evaluation tools (the ``tools/*.py`` scripts call these ``main`` functions).

* ``tools/test.py``: benchmark models, merge into a leaderboard (+ ``report.html``);
* ``tools/infer.py``: restore an image or a folder;
* ``tools/model_stats.py``: params and FLOPs next to the papers' figures;
* ``tools/make_submission.py``: a Kaggle pixel submission from restored pages;
* ``tools/export_onnx.py``: an ONNX file, checked against torch right after export.

Errors in options, data or checkpoints print one ``error: ...`` line and exit with status 2
(:func:`irframe.errors.report_error`). A flag that sets an option (``--tile``, ``--precision``,
``--checkpoint``...) is applied as an override of the option file (:class:`irframe.options.Flag`):
the schema validates it and holds its default, once.
"""

from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING

from irframe.errors import IrframeError, OptionsError, report_error
from irframe.heap import keep_freed_memory
from irframe.options_schema import InferenceOptions
from irframe.threads import add_threads_argument, configure_threads

if TYPE_CHECKING:
    from irframe.options import Options

__all__ = ["benchmark_main", "checkpoint_of", "export_main", "infer_main", "stats_main", "submission_main"]


def _default_device() -> str:
    from irframe.evaluate.models import default_device

    return default_device()


def _add_set(parser: argparse.ArgumentParser, example: str) -> None:
    """``--set KEY=VALUE ...`` with an example of keys that matter to this tool."""
    parser.add_argument(
        "--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
        help=f"override an option of the option file, e.g. --set {example}",
    )


def checkpoint_of(opts: Options) -> str:
    """The weights a tool loads: ``test.checkpoint``, which ``--checkpoint`` sets (one message for
    every tool when neither is given)."""
    checkpoint = opts.test.checkpoint if opts.test is not None else None
    if checkpoint is None:
        raise OptionsError(f"{opts.source}: no checkpoint: pass --checkpoint or set test.checkpoint")
    return checkpoint


PRECISION_CHOICES: tuple[str, ...] = typing.get_args(InferenceOptions.model_fields["precision"].annotation)
"""The values of ``--precision``: those the schema allows for ``inference.precision``."""
BACKEND_CHOICES: tuple[str, ...] = typing.get_args(InferenceOptions.model_fields["backend"].annotation)
"""The values of ``--backend``: those the schema allows for ``inference.backend``."""


def _tile_value(text: str) -> int | str:
    """``--tile``: ``auto`` or an integer. A size the model cannot take (0, not a multiple of its
    ``size_multiple``) is refused later with the model's one-line error (exit status 2)."""
    from irframe.nn.autotile import tile_arg

    try:
        return tile_arg(text)
    except argparse.ArgumentTypeError:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive tile size or 'auto', got {text!r}") from None


def _memory_value(text: str) -> int:
    """``--max-memory``: bytes from ``8GB``, ``512MB``, ... (argparse shows the message as it is)."""
    from irframe.nn.autotile import parse_memory

    try:
        return parse_memory(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_param_key(parser: argparse.ArgumentParser, default_note: str) -> None:
    from irframe.nn.weights import PARAM_KEYS

    parser.add_argument(
        "--param-key", choices=PARAM_KEYS, default=None,
        help="which weights of a file holding both 'params' and 'params_ema' (BasicSR); auto takes params_ema and "
        f"says so (default: {default_note})",
    )


def _add_memory_and_precision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-memory", type=_memory_value, default=None, metavar="SIZE",
        help="memory budget of automatic tiling (tile 'auto'), e.g. 8GB or 512MB (default: inference.max_memory, "
        "else what the device has free)",
    )
    parser.add_argument(
        "--precision", choices=PRECISION_CHOICES, default=None,
        help="run the model in fp32, or under bf16/fp16 autocast (fp16 needs a GPU); outputs stay float "
        "(default: inference.precision, else fp32)",
    )
    parser.add_argument(
        "--backend", choices=BACKEND_CHOICES, default=None,
        help="torch, or onnxruntime: the model exported once to ONNX (cached by checkpoint hash under "
        "$IRFRAME_CACHE/onnx, default ~/.cache/irframe/onnx) and run by onnxruntime on the CPU; float32 only; "
        "needs the [export] extra (default: inference.backend, else torch)",
    )


def _backend_device(backend: str, device: str | None) -> str:
    """The device a tool runs on: ``--device``, else the default for the backend."""
    from irframe.evaluate.models import default_device

    return device or default_device(backend)


# -- tools/test.py -------------------------------------------------------------------------------
def benchmark_main(argv: Sequence[str] | None = None) -> int:
    """``tools/test.py -opt FILE [FILE ...] [--checkpoint CKPT ...] [--set k=v] [--out DIR]``."""
    parser = argparse.ArgumentParser(
        prog="test.py",
        description="Run models over the benchmark sets of their option files (test.datasets), save the "
        "restored images, compute test.metrics and merge the results into a leaderboard "
        "(leaderboard.md/.csv/.json, per_image.csv, report.html).",
    )
    parser.add_argument("-opt", "--opt", dest="opts", nargs="+", required=True, metavar="FILE", help="option file(s)")
    parser.add_argument(
        "--checkpoint", nargs="+", default=[], metavar="CKPT",
        help="weights file(s) or checkpoint folder(s): one per option file, or several for one option file "
        "(default: each file's test.checkpoint)",
    )
    _add_set(parser, "inference.tile=256 test.report_images=5")
    parser.add_argument("--out", default=None, metavar="DIR", help="leaderboard folder (default: test.results_root)")
    _add_param_key(parser, "each file's test.param_key, else auto")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    _add_memory_and_precision(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_threads_argument(parser)
    args = parser.parse_args(argv)

    from irframe.evaluate.bench import run_benchmarks

    keep_freed_memory()  # the next image reuses this one's pages (irframe.heap)
    try:
        paths = run_benchmarks(
            args.opts, args.checkpoint, args.overrides, args.out,
            device=args.device, progress=not args.no_progress,
            precision=args.precision, max_memory=args.max_memory, param_key=args.param_key, threads=args.threads,
            backend=args.backend,
        )
    except IrframeError as exc:
        return report_error(exc)
    print(paths["md"].read_text(encoding="utf-8"))
    for kind, path in paths.items():
        print(f"{kind:>9}: {path}")
    return 0


# -- tools/infer.py ------------------------------------------------------------------------------
def infer_main(argv: Sequence[str] | None = None) -> int:
    """``tools/infer.py --checkpoint CKPT | -opt FILE --input IMG_OR_DIR --output DIR [...]``."""
    parser = argparse.ArgumentParser(
        prog="infer.py",
        description="Restore one image or every image of a folder. Outputs keep the input's bit depth and "
        "channels; input files are never overwritten.",
    )
    parser.add_argument("--checkpoint", default=None, metavar="CKPT", help="weights file or checkpoint folder")
    parser.add_argument(
        "-opt", "--opt", default=None, metavar="FILE", help="option file naming the model (and test.checkpoint)"
    )
    _add_set(parser, "inference.tile=256 inference.self_ensemble=true")
    parser.add_argument(
        "--input", required=True, metavar="IMG_OR_DIR",
        help="an image file, or a folder whose images (not its subfolders) are restored",
    )
    parser.add_argument(
        "--output", required=True, metavar="DIR",
        help="folder for the restored images, named like their inputs (lossless formats kept, JPEG etc. saved as "
        "PNG; created if missing; must not be the input folder, and no output may overwrite an input)",
    )
    parser.add_argument(
        "--input-right", default=None, metavar="IMG_OR_DIR",
        help="dual-pixel models (6 channels): the right views, a file or a folder paired with --input (the left "
        "views) by file name",
    )
    _add_param_key(parser, "the option file's test.param_key, else auto")
    parser.add_argument("--task", default=None, help="task of a multi-task model (IPT: e.g. sr2, denoise30)")
    parser.add_argument(
        "--tile", type=_tile_value, default=None, metavar="SIDE|auto",
        help="tile side in input pixels, or 'auto': the largest tile that fits --max-memory (default: whole image)",
    )
    parser.add_argument("--tile-overlap", type=int, default=None, help="overlap between tiles (default: the model's)")
    parser.add_argument("--self-ensemble", action="store_true", help="average the x8 flips/rotations")
    parser.add_argument("--device", default=None, help="cpu, cuda ... (default: cuda if available)")
    parser.add_argument(
        "--compile", action="store_true",
        help="torch.compile the model (pays off over many images of one size; default: inference.compile)",
    )
    _add_memory_and_precision(parser)
    parser.add_argument(
        "--fast", action="store_true",
        help="time torch fp32, onnxruntime (if installed; exported once, cached) and bf16 (only with --allow-bf16, "
        "on CPUs with AVX512-BF16/AMX) on a 128x128 probe, run the fastest and say which; not with --backend, "
        "--precision or --compile",
    )
    parser.add_argument(
        "--allow-bf16", action="store_true",
        help="with --fast: let it pick bf16 autocast where the CPU has AVX512-BF16 or AMX; outputs change slightly "
        "(measured -0.003 dB PSNR on BSD68, -0.006 dB on Kodak24: benchmarks/RESULTS.md)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs and scripts)")
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    if args.checkpoint is None and args.opt is None:
        parser.error("give --checkpoint CKPT or -opt FILE (or both)")
    if args.fast:
        given = [flag for flag, value in (("--backend", args.backend), ("--precision", args.precision),
                                          ("--compile", args.compile or None)) if value is not None]
        if given:
            return report_error(OptionsError(
                f"--fast chooses the backend and precision itself: drop {' and '.join(given)}, or drop --fast"
            ))
        # measured below on the loaded model; the option file's backend/precision/compile give way
        args.backend, args.precision = "torch", "fp32"
    elif args.allow_bf16:
        return report_error(OptionsError("--allow-bf16 only applies with --fast (bf16 by hand: --precision bf16)"))

    from irframe.evaluate.infer import check_task, infer_files, match_right_views, plan_outputs
    from irframe.evaluate.models import backend_model, load_for_eval
    from irframe.evaluate.runner import log_line
    from irframe.options import Flag, load_options

    try:
        pairs = plan_outputs(args.input, args.output)  # refuse unsafe outputs before loading a model
        right_views = match_right_views(pairs, args.input_right, args.output) if args.input_right else None
        # the command line wins over the option file (and over --set): its flags are overrides
        opts = load_options(args.opt, args.overrides, flags=[
            Flag("--checkpoint", "test.checkpoint", args.checkpoint),
            Flag("--param-key", "test.param_key", args.param_key),
            Flag("--task", "inference.task", args.task),
            Flag("--tile", "inference.tile", args.tile),
            Flag("--tile-overlap", "inference.tile_overlap", args.tile_overlap),
            Flag("--self-ensemble", "inference.self_ensemble", args.self_ensemble or None),
            Flag("--compile", "inference.compile", args.compile or None),
            Flag("--max-memory", "inference.max_memory", args.max_memory),
            Flag("--precision", "inference.precision", args.precision),
            Flag("--backend", "inference.backend", args.backend),
            Flag("--fast", "inference.compile", False if args.fast else None),
            Flag("--threads", "threads", args.threads),
        ])
        inference, test, checkpoint = opts.inference, opts.test, checkpoint_of(opts)
        device = _backend_device(inference.backend, args.device)
        configure_threads(opts.threads, log=lambda msg: log_line(msg, sys.stdout))
        keep_freed_memory()  # the next image reuses this one's pages (irframe.heap)
        key = test.param_key if test is not None else "auto"
        loaded = load_for_eval(
            opts.model, checkpoint, device=device, source=args.opt or "checkpoint",
            compile=inference.compile, key=key, log=lambda msg: print(msg, file=sys.stderr),
        )
        task = check_task(loaded.model, inference.task)
        backend: str = inference.backend
        precision: typing.Any = inference.precision  # a schema value, or --fast's choice of one
        if args.fast:
            from irframe.nn.ort import choose_fast

            choice = choose_fast(
                loaded.model, checkpoint=loaded.checkpoint, config=loaded.config, task=task, device=device,
                allow_bf16=args.allow_bf16, weights_key=key, log=lambda msg: print(msg, file=sys.stderr),
            )
            print(choice.line(), file=sys.stderr)
            backend, precision, model = choice.backend, choice.precision, choice.model
        else:
            model = backend_model(
                loaded, backend, device=device, task=task, weights_key=key, log=lambda msg: print(msg, file=sys.stderr)
            )
        result = infer_files(
            model,
            pairs,
            tile=inference.tile,
            tile_overlap=inference.tile_overlap,
            self_ensemble=inference.self_ensemble,
            task=task,
            device=device,
            max_memory=inference.max_memory_bytes,
            precision=precision,
            progress=not args.no_progress,
            log=log_line,  # through tqdm: the tile choices do not land on the progress bar
            right_views=right_views,
        )
    except IrframeError as exc:
        return report_error(exc)
    if backend == "torch":  # onnxruntime said so when it loaded its graph
        print(f"backend: torch {precision} ({device})", file=sys.stderr)
    print(f"wrote {len(result.written)} image(s) to {args.output}")
    if result.failed:
        print(f"error: {len(result.failed)} image(s) could not be read:", file=sys.stderr)
        for _path, reason in result.failed:
            print(f"  {reason}", file=sys.stderr)
        return 1
    return 0


# -- tools/model_stats.py ------------------------------------------------------------------------
def stats_main(argv: Sequence[str] | None = None) -> int:
    """``tools/model_stats.py -opt FILE [FILE ...] | --arch NAME [...] [--size 256]``."""
    parser = argparse.ArgumentParser(
        prog="model_stats.py",
        description="Parameters and FLOPs per model (computed), beside the papers' figures (quoted).",
    )
    parser.add_argument("-opt", "--opt", dest="opts", nargs="+", default=[], metavar="FILE", help="option file(s)")
    parser.add_argument("--arch", nargs="+", default=[], metavar="NAME", help="registered arch(s), default options")
    _add_set(parser, "model.dim=16 model.num_blocks=[2,2,2,2]")
    parser.add_argument("--size", type=int, default=256, help="square input side for FLOPs (default 256)")
    parser.add_argument("--task", default=None, help="task of a multi-task model")
    parser.add_argument("--no-flops", action="store_true", help="count parameters only")
    args = parser.parse_args(argv)
    if not args.opts and not args.arch:
        parser.error("give -opt FILE or --arch NAME")
    if args.size < 1:
        parser.error(f"--size must be positive, got {args.size}")

    from irframe.errors import OptionsError
    from irframe.evaluate.model_stats import build_on_meta, measure, stats_table
    from irframe.options import load_options

    try:
        targets = [(name, {"type": name}, f"--arch {name}") for name in args.arch]
        for path in args.opts:
            opts = load_options(path, args.overrides)
            if opts.model is None:
                raise OptionsError(f"{path}: model: missing required key (model_stats builds the arch from it)")
            targets.append((opts.name, opts.model, f"{path}: model"))
        rows = []
        for name, cfg, where in targets:
            model = build_on_meta(cfg, path=where)
            rows.append(measure(model, name, str(cfg["type"]), args.size, task=args.task, flops=not args.no_flops))
    except IrframeError as exc:
        return report_error(exc)
    print(stats_table(rows))
    return 0


# -- tools/make_submission.py --------------------------------------------------------------------
def submission_main(argv: Sequence[str] | None = None) -> int:
    """``tools/make_submission.py --pred DIR --input DIR --out submission.csv [--sample FILE]``."""
    parser = argparse.ArgumentParser(
        prog="make_submission.py",
        description="Write a Kaggle pixel submission (Denoising Dirty Documents format: id=image_row_col, "
        "value in [0,1]) from restored pages named <id>.png.",
    )
    parser.add_argument("--pred", required=True, metavar="DIR", help="restored pages (<id>.png)")
    parser.add_argument("--input", required=True, metavar="DIR", help="the competition's test pages (size check)")
    parser.add_argument("--out", required=True, metavar="FILE", help="submission .csv (or .csv.gz)")
    parser.add_argument("--sample", default=None, metavar="FILE", help="sample submission giving the row order")
    parser.add_argument(
        "--order", choices=("column", "row"), default="column",
        help="pixel order without --sample: column (the competition's: 1_1_1, 1_2_1, ...) or row",
    )
    args = parser.parse_args(argv)

    from irframe.evaluate.submission import write_submission

    try:
        info = write_submission(args.pred, args.input, args.out, order=args.order, sample=args.sample)
    except IrframeError as exc:
        return report_error(exc)
    print(f"wrote {info.rows} pixel rows of {info.images} image(s) to {info.path}")
    return 0


# -- tools/export_onnx.py ------------------------------------------------------------------------
EXPORT_HELP = """Export a model to ONNX and check it with onnxruntime against torch, right after export.

    python tools/export_onnx.py --checkpoint FILE --out model.onnx [--opset 18] [--task NAME]
    python tools/export_onnx.py -opt options/x.yml [--checkpoint FILE] --out model.onnx

The model comes from a checkpoint alone (its arch is detected) or from an option file's ``model:``
(with ``test.checkpoint`` or ``--checkpoint``). Restormer, PromptIR, NAFNet, SwinIR, HAT and the SR
classics get dynamic height and width (multiples of the model's size multiple, e.g. SwinIR's window;
tracing a full-size SwinIR/HAT takes minutes on a CPU); fixed-size models (IPT) are exported at their patch size,
one graph per task, and are tiled by the caller. After export the graph is run by onnxruntime on
two input sizes (one for fixed-size models) and compared with the torch output: the max abs
difference is printed, and beyond ``--atol`` the tool fails (exit 1). Needs the ``[export]`` extra.
"""


def _check_export_destination(out: str) -> None:
    """``--out`` names a ``.onnx`` file that can be written, checked before a model is loaded (an
    export takes a while): not a folder, under a folder (or a path to one still to be made) where a
    file can be created. Nothing is left behind by the check.

    Raises:
        ExportError: naming the file and the reason.
    """
    import os
    import tempfile
    from pathlib import Path

    from irframe.nn.export import ExportError

    dest = Path(out)
    if dest.is_dir():
        raise ExportError(f"{dest}: is a folder; --out names the ONNX file to write (e.g. model.onnx)")
    if dest.suffix.lower() != ".onnx":
        raise ExportError(f"{dest}: name the output file *.onnx")
    folder = dest.parent
    while not os.path.lexists(folder) and folder != folder.parent:  # the folders to make: check the first that exists
        folder = folder.parent
    if not folder.is_dir():
        raise ExportError(f"{dest}: cannot write the ONNX file: {folder} is not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".irframe_write_test_", suffix=".tmp"):
            pass
    except OSError as exc:
        raise ExportError(
            f"{dest}: cannot write the ONNX file in {folder} ({exc.strerror or type(exc).__name__})"
        ) from None


def export_main(argv: Sequence[str] | None = None) -> int:
    """``tools/export_onnx.py``: export, check; returns the exit status (0 ok, 1 check failed, 2 error)."""
    from irframe.nn.export import DEFAULT_ATOL, DEFAULT_OPSET

    parser = argparse.ArgumentParser(
        prog="export_onnx.py", description=EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", default=None, metavar="CKPT", help="weights file or checkpoint folder")
    parser.add_argument("-opt", "--opt", default=None, metavar="FILE", help="option file naming the model")
    _add_set(parser, "test.checkpoint=x.safetensors")
    parser.add_argument("--out", required=True, metavar="FILE.onnx", help="ONNX file to write")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--task", default=None, help="task of a multi-task model (IPT: sr_x2, denoise30, ...)")
    parser.add_argument(
        "--atol", type=float, default=DEFAULT_ATOL,
        help=f"max |onnxruntime - torch| accepted, in [0,1] units (default {DEFAULT_ATOL:g})",
    )
    args = parser.parse_args(argv)
    if args.checkpoint is None and args.opt is None:
        parser.error("give --checkpoint CKPT or -opt FILE (or both)")

    from irframe.evaluate.models import load_for_eval
    from irframe.nn.export import ExportError, check_onnx, default_check_inputs, export_onnx
    from irframe.options import Flag, load_options

    try:
        opts = load_options(args.opt, args.overrides, flags=[
            Flag("--checkpoint", "test.checkpoint", args.checkpoint),
            Flag("--task", "inference.task", args.task),
        ])
        task = opts.inference.task
        _check_export_destination(args.out)
        loaded = load_for_eval(opts.model, checkpoint_of(opts), device="cpu", source=args.opt or "checkpoint")
        try:
            result = export_onnx(loaded.model, args.out, opset=args.opset, task=task)
        except OSError as exc:  # the folder became unwritable, a full disk...: the exporter's write
            raise ExportError(f"{args.out}: cannot write the ONNX file ({exc.strerror or exc})") from None
        print(f"exported {loaded.arch} ({loaded.checkpoint}) to {result.describe()}")
        inputs = default_check_inputs(loaded.model)
        diff = check_onnx(loaded.model, result.path, inputs, task=task)
    except IrframeError as exc:
        return report_error(exc)
    sizes = ", ".join("x".join(map(str, x.shape[-2:])) for x in inputs)
    print(f"onnxruntime vs torch on {sizes}: max abs diff {diff:.3e} (tolerance {args.atol:g})")
    if not diff <= args.atol:  # also catches NaN
        print(
            f"error: {result.path}: the exported graph differs from the torch model by {diff:.3e} > "
            f"{args.atol:g}; the file is kept for inspection but should not be used",
            file=sys.stderr,
        )
        return 1
    return 0
