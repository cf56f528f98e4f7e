"""The ``irframe`` console command.

Subcommands:
    irframe list                       every registered component, by kind, with its plugin
    irframe show-options FILE [--set]  the resolved options (``_base_`` merged, overrides applied)
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from irframe.errors import IrframeError


def error_message(exc: BaseException) -> str:
    """The message of ``exc`` as the command-line tools print it (after ``error: ``).

    A DataLoader worker re-raises a dataset's error with the worker's whole traceback as its
    message; what the user needs (the file or record at fault) is the original message, which the
    traceback ends with after ``module.ErrorClass: ``.
    """
    text = str(exc)
    if not (text.startswith("Caught ") and "\nOriginal Traceback" in text):
        return text
    marker = f"{type(exc).__module__}.{type(exc).__qualname__}: "
    at = text.rfind(marker)
    return text[at + len(marker) :].rstrip("\n") if at >= 0 else text


def _cmd_list(args: argparse.Namespace) -> int:
    from irframe.registry import LOADER, conflicts, list_components

    components = list_components()
    kinds = [_singular(args.kind, components)] if args.kind else list(components)
    for kind in kinds:
        entries = components.get(kind)
        if entries is None:
            print(f"irframe list: unknown kind {kind!r}; kinds: {', '.join(components)}", file=sys.stderr)
            return 2
        print(f"{_plural(kind)} ({len(entries)}):")
        width = max((len(e.name) for e in entries), default=0)
        for e in entries:
            print(f"  {e.name:<{width}}  [{e.provider}]")
    print("plugins:")
    for info in LOADER.plugins.values():
        dist = f" ({info.distribution})" if info.distribution else ""
        state = f"FAILED: {info.error}" if info.error else f"{len(info.components)} components"
        print(f"  {info.name}{dist} -> {info.value}: {state}")
    for kind, names in conflicts().items():
        for name, entries in names.items():
            who = ", ".join(e.provider for e in entries)
            print(f"CONFLICT: {kind} {name!r} is registered by several plugins: {who}")
    return 0


def _plural(kind: str) -> str:
    return kind + ("es" if kind.endswith("s") else "s")


def _singular(kind: str, kinds: Sequence[str]) -> str:
    """The registry kind named by ``kind`` in the singular or as the listing's plural heading
    (``arch`` or ``archs``, ``loss`` or ``losses``), case-insensitively."""
    text = kind.lower()
    for known in kinds:
        if text in (known, _plural(known)):
            return known
    return kind


def _cmd_show_options(args: argparse.Namespace) -> int:
    from irframe.options import check_components, dump_options, load_options

    opts = load_options(args.file, args.set or [])
    if args.check:
        check_components(opts)
    sys.stdout.write(dump_options(opts))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``irframe`` command."""
    parser = argparse.ArgumentParser(
        prog="irframe",
        description="irframe: list the registered components and plugins, or show resolved options.",
        epilog="examples:\n"
        "  irframe list                 every component by kind (arch, loss, dataset, ...) and every plugin\n"
        "  irframe list archs           only the archs ('arch' works too)\n"
        "  irframe show-options options/demo.yml --set train.total_iter=10",
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
    p.set_defaults(func=_cmd_show_options)
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
