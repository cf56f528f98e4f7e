"""The ``irframe`` console command.

Subcommands:
    irframe list                       every registered component, by kind, with its plugin
    irframe show-options FILE [--set]  the resolved options (``_base_`` merged, overrides applied)
    irframe convert-options IN OUT     write a BasicSR-style option file as a native one
    irframe new-plugin NAME [--dir D]  write a pip-installable plugin skeleton (docs/plugins.md)
    irframe zoo [publish CKPT NAME]    list the zoo models (``zoo:NAME``), or add a trained checkpoint
    irframe app [--checkpoint CKPT]    a local web app: restore your own image in the browser (``[app]``)
    irframe export CKPT OUT.pth        a plain state dict with released names (chaiNNer, ComfyUI)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence

from irframe.errors import IrframeError, error_message

__all__ = ["build_parser", "error_message", "main"]  # error_message: now in irframe.errors (old import path)


def _cmd_list(args: argparse.Namespace) -> int:
    from irframe.registry import LOADER, conflicts, list_components

    components = list_components()
    kinds = [_singular(args.kind, components)] if args.kind else list(components)
    unchecked = False
    for kind in kinds:
        entries = components.get(kind)
        if entries is None:
            print(f"irframe list: unknown kind {kind!r}; kinds: {', '.join(components)}", file=sys.stderr)
            return 2
        print(f"{_plural(kind)} ({len(entries)}):")
        width = max((len(e.name) for e in entries), default=0)
        for e in entries:
            print(f"  {e.name:<{width}}  [{e.provider}]" + ("" if e.checked else " *"))
            unchecked = unchecked or not e.checked
    if unchecked:
        print("* arguments not checked strictly: no signature, or registered with extra_keys=True (**kwargs)")
    print("plugins:")
    for info in LOADER.plugins.values():
        dist = f" ({info.distribution})" if info.distribution else ""
        if info.error:
            state = f"FAILED: {info.error}"
        elif info.disabled:
            state = f"disabled ({info.disabled})"
        else:
            state = f"{len(info.components)} components" + (f", plugin API {info.api}" if info.api is not None else "")
        print(f"  {info.name}{dist} -> {info.value}: {state}")
        if info.components and info.name != "irframe":
            print(f"      {_components_by_kind(info.components)}")
    for kind, names in conflicts().items():
        for name, entries in names.items():
            who = ", ".join(e.provider for e in entries)
            picks = " or ".join(e.qualified for e in entries)
            print(f"CONFLICT: {kind} {name!r} is registered by several plugins: {who} (pick one with type: {picks})")
    return 0


def _components_by_kind(components: Iterable[tuple[str, str]]) -> str:
    """``archs: HAT; detectors: HAT`` for a plugin's ``(registry, name)`` pairs."""
    grouped: dict[str, list[str]] = {}
    for kind, name in components:
        grouped.setdefault(kind, []).append(name)
    return "; ".join(f"{_plural(kind)}: {', '.join(sorted(names))}" for kind, names in grouped.items())


def _plural(kind: str) -> str:
    return kind + ("es" if kind.endswith("s") else "s")


def _singular(kind: str, kinds: Iterable[str]) -> str:
    """The registry kind named by ``kind`` in the singular or as the listing's plural heading
    (``arch`` or ``archs``, ``loss`` or ``losses``), case-insensitively."""
    text = kind.lower()
    for known in kinds:
        if text in (known, _plural(known)):
            return known
    return kind


def _cmd_show_options(args: argparse.Namespace) -> int:
    from irframe.options import dump_options, load_options

    opts = load_options(args.file, args.set or [], check=args.check, paths=args.paths)  # builds nothing heavy
    sys.stdout.write("".join(f"# {line}\n" for line in _translation_notes(args.file)))
    sys.stdout.write(dump_options(opts))
    return 0


def _translation_notes(path: str) -> list[str]:
    """For a BasicSR-style file: a line saying so, then its translation notes (else nothing)."""
    from irframe.compat.basicsr import is_basicsr, translate
    from irframe.options import load_with_bases

    raw = load_with_bases(path)
    if not is_basicsr(raw):
        return []
    notes = translate(raw, path).notes
    return [f"{path}: translated from BasicSR's layout; {len(notes)} notes:", *(f"  {n}" for n in notes)]


def _cmd_convert_options(args: argparse.Namespace) -> int:
    """Write the native equivalent of a BasicSR-style option file (checked before it is written)."""
    import os
    import tempfile
    from pathlib import Path

    from irframe.compat.basicsr import is_basicsr, native_yaml, translate
    from irframe.data.io import give_default_permissions
    from irframe.errors import OptionsError
    from irframe.options import load_with_bases, load_yaml, validate_options

    out = Path(args.output)
    if out.is_dir():  # also with --force: a folder is never replaced by a file
        raise OptionsError(f"{out}: is a folder; OUT names the option file to write (e.g. {out / 'native.yml'})")
    if out.exists() and not args.force:
        raise OptionsError(f"{out}: already exists; pass --force to overwrite it")
    raw = load_with_bases(args.input)
    if not is_basicsr(raw):
        raise OptionsError(
            f"{args.input}: not a BasicSR-style option file (no network_g, optim_g, batch_size_per_gpu, ...)"
        )
    text = native_yaml(translate(raw, args.input), args.input)
    tmp: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        tmp = Path(tmp_name)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        validate_options(load_yaml(tmp), source=str(out))  # what is written must load as it is
        give_default_permissions(tmp)  # mkstemp makes 0600
        os.replace(tmp, out)
        tmp = None
    except OSError as exc:  # the folder cannot be made or written, a full disk, OUT became a folder
        reason = exc.strerror or str(exc)
        if isinstance(exc, (FileExistsError, NotADirectoryError)):  # from mkdir: a file on the way
            reason = f"a part of {out.parent} is a file, not a folder"
        raise OptionsError(f"{out}: cannot write the option file ({reason})") from None
    finally:
        if tmp is not None:  # never leave a temporary file behind
            tmp.unlink(missing_ok=True)
    print(f"wrote {out} (native options; the notes are at its top)")
    return 0


def _cmd_new_plugin(args: argparse.Namespace) -> int:
    """Write the plugin skeleton and say what to do next."""
    from irframe.scaffold import new_plugin

    root = new_plugin(args.name, args.dir, arch=args.arch)
    print(f"wrote {root}/ (plugin {args.name!r}); next:")
    print(f"  pip install -e {root}")
    print("  irframe list arch")
    print(f"  python -m pytest -q {root / 'tests'}")
    return 0


def _cmd_zoo(args: argparse.Namespace) -> int:
    from irframe.zoo import list_zoo, publish, zoo_dir

    if args.zoo_command == "publish":
        card = {"task": args.task, "option_file": args.option}
        out = publish(args.checkpoint, args.name, card, folder=args.dir, force=args.force, half=args.half)
        print(f"wrote {out} (load it as zoo:{args.name} when it lies in {zoo_dir()})")
        return 0
    entries = list_zoo(args.dir)
    folder = args.dir or zoo_dir()
    if not entries:
        print(f"no zoo models in {folder}")
        return 0
    print(f"zoo models in {folder} (use as --checkpoint zoo:NAME or irframe.load_model('zoo:NAME')):")
    width = max(len(e.name) for e in entries)
    for e in entries:
        task = e.card.get("task", "")
        print(f"  {e.name:<{width}}  {e.arch:<10} {e.params / 1e3:8.1f}k params {e.size_bytes / 2**20:6.2f} MB  {task}")
    return 0


def _cmd_app(args: argparse.Namespace) -> int:
    """Serve the web app (irframe.app) until Ctrl-C."""
    from irframe.app import DEFAULT_MAX_PIXELS, default_models, serve
    from irframe.errors import OptionsError
    from irframe.heap import keep_freed_memory
    from irframe.nn.autotile import parse_memory, tile_arg
    from irframe.threads import configure_threads

    try:
        tile = tile_arg(args.tile)
        max_memory = parse_memory(args.max_memory) if args.max_memory else None
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise OptionsError(f"--tile/--max-memory: {exc}") from None
    configure_threads(args.threads)
    keep_freed_memory()  # each request reuses the last one's pages (irframe.heap)
    models = default_models(args.checkpoint or [], zoo=args.zoo)
    serve(models, host=args.host, port=args.port, device=args.device, tile=tile, max_memory=max_memory,
          max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    """Write a plain state dict (irframe.nn.interop) and say what spandrel makes of it."""
    from irframe.errors import CheckpointError
    from irframe.nn.autoload import load_model
    from irframe.nn.interop import compare_with_spandrel, export_weights

    model = load_model(args.checkpoint, key=args.param_key)
    report = export_weights(model, args.output, force=args.force, allow_problems=not args.strict)
    print(f"wrote {report.path} ({report.arch}, {report.tensors} tensors: a plain state dict with the released names)")
    for line in report.problems:
        print(f"warning: {line}")
    for line in report.notes:
        print(f"note: {line}")
    if args.check:
        diff = compare_with_spandrel(report.path, model)
        print(f"check: spandrel's output vs irframe's on a random input: largest difference {diff:.2e}")
        if diff > 1e-4:
            raise CheckpointError(f"{report.path}: spandrel opens it but computes something else ({diff:.2e})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``irframe`` command."""
    parser = argparse.ArgumentParser(
        prog="irframe",
        description="irframe: the registered components and plugins, resolved option files, plugin skeletons "
        "and the model zoo (tools/*.py train, test and infer).",
        epilog="examples:\n"
        "  irframe list                 every component by kind (arch, loss, dataset, ...) and every plugin\n"
        "  irframe list archs           only the archs ('arch' works too)\n"
        "  irframe show-options options/demo.yml --set train.total_iter=10\n"
        "  irframe new-plugin mynet     write ./irframe-mynet/, a plugin skeleton (guide: docs/plugins.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered components and plugins")
    p.add_argument(
        "kind", nargs="?", help="only this kind, singular or plural (arch/archs, loss/losses, dataset, metric, ...)"
    )
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show-options", help="print the resolved options of an option file")
    p.add_argument("file")
    p.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="overrides, e.g. train.optim.lr=2e-4")
    p.add_argument(
        "--no-check", dest="check", action="store_false", help="skip checking components against the registries"
    )
    p.add_argument(
        "--no-paths",
        dest="paths",
        action="store_false",
        help="check components but not that data folders and files exist",
    )
    p.set_defaults(func=_cmd_show_options)

    p = sub.add_parser("convert-options", help="write a BasicSR/Restormer option file as a native irframe one")
    p.add_argument("input", metavar="IN", help="BasicSR-style option file")
    p.add_argument("output", metavar="OUT", help="native option file to write")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    p.set_defaults(func=_cmd_convert_options)

    p = sub.add_parser("new-plugin", help="write a pip-installable plugin skeleton (arch, detector, tests)")
    p.add_argument("name", help="plugin name, a Python identifier (package irframe_NAME, distribution irframe-NAME)")
    p.add_argument("--dir", default=".", help="folder in which irframe-NAME/ is created (default: here)")
    p.add_argument("--arch", default=None, help="arch class name (default: NAME in CamelCase)")
    p.set_defaults(func=_cmd_new_plugin)

    p = sub.add_parser("zoo", help="list the zoo models (zoo:NAME), or publish a trained checkpoint into the zoo")
    p.add_argument("--dir", default=None, help="zoo folder (default: $IRFRAME_ZOO, else zoo/ of the checkout)")
    p.set_defaults(func=_cmd_zoo, zoo_command=None)
    zsub = p.add_subparsers(dest="zoo_command")
    z = zsub.add_parser("publish", help="copy a checkpoint written by tools/train.py into the zoo with a card")
    z.add_argument("checkpoint", metavar="CKPT", help="weights file or experiment checkpoint folder")
    z.add_argument("name", help="zoo name (the file becomes NAME.safetensors)")
    z.add_argument("--option", required=True, metavar="FILE", help="the option file that trained it")
    z.add_argument("--task", required=True, help="what the model does, e.g. 'color Gaussian denoising, sigma 25'")
    z.add_argument("--force", action="store_true", help="replace an existing zoo model of that name")
    z.add_argument("--half", action="store_true", help="store the weights as float16 (half the file; re-score it)")

    from irframe.threads import threads_arg

    p = sub.add_parser("app", help="a local web app: restore your own image in the browser (needs irframe[app])")
    p.add_argument("--checkpoint", nargs="+", metavar="CKPT", help="models to offer first (files, folders, zoo:NAME)")
    p.add_argument("--no-zoo", dest="zoo", action="store_false", help="offer only the --checkpoint models")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--tile", default="auto", metavar="SIDE|auto", help="tiling (default: auto)")
    p.add_argument("--max-memory", default=None, metavar="SIZE",
                   help="memory budget of --tile auto, e.g. 4GB (default: the device's free memory)")
    p.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="largest output restored, in pixels after the model's scale (default: 40000000)")
    p.add_argument("--threads", type=threads_arg, default=None, help="CPU threads (default: auto)")
    p.set_defaults(func=_cmd_app)

    p = sub.add_parser("export", help="write a checkpoint as a plain .pth/.safetensors state dict (chaiNNer, ComfyUI)")
    p.add_argument("checkpoint", metavar="CKPT", help="weights file, checkpoint folder or zoo:NAME")
    p.add_argument("output", metavar="OUT", help="file to write: .pth or .safetensors (no metadata)")
    p.add_argument("--param-key", default="auto", help="params or params_ema of a BasicSR file (default: auto)")
    p.add_argument("--check", action="store_true", help="open OUT with spandrel and compare outputs (irframe[interop])")
    p.add_argument("--strict", action="store_true", help="refuse a model spandrel would not open as irframe runs it")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=_cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``irframe`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except IrframeError as exc:
        print(f"irframe {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
