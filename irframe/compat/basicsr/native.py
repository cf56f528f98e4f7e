"""A translated file written out as a commented native option file (``irframe convert-options``)."""

from __future__ import annotations

from irframe.compat.basicsr.base import Translation


def native_yaml(t: Translation, source: str) -> str:
    """The translated options as a commented native YAML file (``irframe convert-options``).

    A header says where the file came from and lists the notes; each top-level section is preceded
    by the BasicSR keys that were mapped into it.
    """
    import yaml

    lines = [f"# Converted from the BasicSR-style option file {source} by `irframe convert-options`.", "#"]
    if t.notes:
        lines.append("# Dropped or changed on the way (notes):")
        lines += [f"#   {n}" for n in t.notes]
    for key, value in t.native.items():
        sources = [f"#   {src} -> {dst}" for src, dst in t.mapped if _top(dst) == key]
        if sources:
            lines += ["#", "# from BasicSR:", *sources]
        flow = None if isinstance(value, (dict, list)) else False  # nested lists inline, top-level scalars plain
        text = yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=flow, width=100)
        lines.append(text.rstrip("\n"))
    return "\n".join(lines) + "\n"


def _top(dst: str) -> str:
    head = dst.split(".", 1)[0]
    return (
        head if head in ("name", "seed", "model", "datasets", "train", "val", "logger", "path", "test") else "datasets"
    )
