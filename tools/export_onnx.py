"""Export a model to ONNX and check it with onnxruntime against torch, right after export.

    python tools/export_onnx.py --checkpoint FILE --out model.onnx [--opset 18] [--task NAME]
    python tools/export_onnx.py -opt options/x.yml [--checkpoint FILE] --out model.onnx

The model comes from a checkpoint alone (its arch is detected) or from an option file's ``model:``
(with ``test.checkpoint`` or ``--checkpoint``). Restormer/PromptIR get dynamic height and width
(multiples of the model's size multiple); fixed-size models (IPT) are exported at their patch size,
one graph per task, and are tiled by the caller. After export the graph is run by onnxruntime on
two input sizes (one for fixed-size models) and compared with the torch output: the max abs
difference is printed, and beyond ``--atol`` the tool fails (exit 1). Needs the ``[export]`` extra.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, export, check; returns the exit status (0 ok, 1 check failed, 2 error)."""
    from irframe.nn.export import DEFAULT_ATOL, DEFAULT_OPSET

    parser = argparse.ArgumentParser(
        prog="export_onnx.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", default=None, metavar="CKPT", help="weights file or checkpoint folder")
    parser.add_argument("-opt", "--opt", default=None, metavar="FILE", help="option file naming the model")
    parser.add_argument(
        "--set", dest="overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
        help="override an option of -opt, e.g. --set test.checkpoint=x.safetensors",
    )
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

    from irframe.errors import IrframeError, OptionsError
    from irframe.evaluate.models import load_for_eval
    from irframe.nn.export import check_onnx, default_check_inputs, export_onnx
    from irframe.options import load_options

    try:
        model_cfg, checkpoint, task = None, args.checkpoint, args.task
        if args.opt is not None:
            opts = load_options(args.opt, args.overrides)
            model_cfg = opts.model
            if checkpoint is None:
                checkpoint = opts.test.checkpoint if opts.test else None
            if checkpoint is None:
                raise OptionsError(f"{args.opt}: no checkpoint: pass --checkpoint or set test.checkpoint")
            if task is None and opts.inference is not None:
                task = opts.inference.task
        loaded = load_for_eval(model_cfg, checkpoint, device="cpu", source=args.opt or "checkpoint")
        result = export_onnx(loaded.model, args.out, opset=args.opset, task=task)
        print(f"exported {loaded.arch} ({loaded.checkpoint}) to {result.describe()}")
        inputs = default_check_inputs(loaded.model)
        diff = check_onnx(loaded.model, result.path, inputs, task=task)
    except IrframeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    raise SystemExit(main())
