"""Option files as plain data: safe YAML loading, ``_base_`` inheritance, ``--set`` overrides.

Nothing here knows the schema (:mod:`irframe.options_schema`) or the registries; the result is a
plain mapping that :func:`irframe.options.load_options` translates (other frameworks' dialects),
overrides and validates.

* YAML is parsed with a safe loader (a ``!!python/object`` tag is refused) that also rejects
  duplicate keys, alias bombs (:data:`MAX_YAML_NODES`) and over-deep nesting (:data:`MAX_YAML_DEPTH`).
* ``_base_: [a.yml, b.yml]`` (paths relative to the file) are loaded first and deep-merged in order,
  then the file's own keys on top; mappings merge, everything else replaces. Cycles are errors.
* ``--set a.b.c=VALUE`` overrides take YAML-typed values (``2e-4`` is a float, ``[1,2]`` a list,
  ``null`` is None); :func:`set_option` sets one already-typed value the same way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from irframe.errors import OptionsError
from irframe.text import clip

MAX_YAML_NODES = 1_000_000
"""A YAML document whose aliases expand to more nodes than this is refused (an alias bomb)."""
MAX_YAML_DEPTH = 100
"""A YAML document nested deeper than this is refused."""

class _StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (a silent overwrite hides typos)."""


def _construct_mapping(loader: _StrictSafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in out:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
            )
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_StrictSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.1 (PyYAML) reads "2e-4" as a string; every researcher writes learning rates that way.
_StrictSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _node_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_node_graph(root: yaml.Node, source: str) -> None:
    """Refuse recursive aliases, documents expanding to over :data:`MAX_YAML_NODES` nodes (aliases
    counted as often as they are used) and nesting deeper than :data:`MAX_YAML_DEPTH`, before
    anything is constructed (iteratively: no recursion, no expansion)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            kids = _node_children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[key] > MAX_YAML_NODES:
                raise OptionsError(
                    f"{source}: refused: its aliases expand to more than {MAX_YAML_NODES:,} values (line "
                    f"{node.start_mark.line + 1}); an option file is small data (is this a YAML alias bomb?)"
                )
            if depth[key] > MAX_YAML_DEPTH:
                raise OptionsError(f"{source}: refused: nested more than {MAX_YAML_DEPTH} levels deep")
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise OptionsError(
                f"{source}:{node.start_mark.line + 1}: refused: an alias refers to itself (a recursive value)"
            )
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _node_children(node) if id(k) not in size)


def _flow_too_deep(text: str) -> bool:
    """Brackets nested deeper than :data:`MAX_YAML_DEPTH` (PyYAML's scanner is quadratic in the
    flow depth, so a file of 50k ``[`` takes seconds before any other check could run)."""
    if text.count("[") + text.count("{") <= MAX_YAML_DEPTH:
        return False
    depth = 0
    for match in re.finditer(r"[\[\]{}]", text):
        depth = depth + 1 if match.group() in "[{" else max(depth - 1, 0)
        if depth > MAX_YAML_DEPTH:
            return True
    return False


_CHARACTER_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "BS", 0x0B: "VT", 0x0C: "FF", 0x1B: "ESC", 0x7F: "DEL"}


def _describe_character(char: str) -> str:
    """``'\\x07' (U+0007, BEL)``: a character YAML refuses, as an error message shows it."""
    code = ord(char)
    name = _CHARACTER_NAMES.get(code) or ("a control character" if code < 0x20 or 0x7F <= code < 0xA0 else "")
    return f"{char!r} (U+{code:04X}{', ' + name if name else ''})"


def _unprintable(text: str, position: int, source: str) -> OptionsError:
    """The error for a character YAML refuses anywhere in a document (NUL, BEL, ESC, other control
    characters, ``U+FFFE``...): ``source``, line and column, and the character (PyYAML's own
    ``ReaderError`` is two lines and names ``<unicode string>``)."""
    position = min(max(position, 0), max(len(text) - 1, 0))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    char = text[position : position + 1] or chr(0)
    escape = f"\\x{ord(char):02x}" if ord(char) <= 0xFF else f"\\u{ord(char):04x}"
    return OptionsError(
        f"{source}:{line}:{column}: invalid YAML: character {_describe_character(char)} is not allowed in YAML "
        f'text (remove it, or write it as the escape "{escape}" inside a double-quoted string)'
    )


def _yaml_load(text: str, source: str) -> Any:
    if _flow_too_deep(text):
        raise OptionsError(f"{source}: refused: nested more than {MAX_YAML_DEPTH} levels deep")
    try:  # the reader checks every character of a str when it is made: a NUL/BEL/ESC raises here
        loader = _StrictSafeLoader(text)
    except yaml.reader.ReaderError as exc:
        raise _unprintable(text, exc.position, source) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_node_graph(node, source)
        return loader.construct_document(node)
    except RecursionError:
        raise OptionsError(f"{source}: refused: nested more than {MAX_YAML_DEPTH} levels deep") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        if "could not determine a constructor" in str(exc):
            problem += " (tags that construct Python objects are refused: option files are data only)"
        raise OptionsError(f"{where}: invalid YAML: {clip(problem)}") from None
    finally:
        loader.dispose()


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load one YAML file (no ``_base_`` resolution) as a mapping."""
    p = Path(path)
    if p.is_dir():
        raise OptionsError(f"{p}: is a folder, not an option file")
    if not p.is_file():
        raise OptionsError(f"{p}: option file not found")
    try:
        raw = p.read_bytes()
    except OSError as exc:  # no permission, EIO (/proc/self/mem), a file that vanished
        raise OptionsError(f"{p}: cannot read the option file ({exc.strerror or type(exc).__name__})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OptionsError(f"{p}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    data = _yaml_load(text, str(p))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OptionsError(f"{p}: the top level must be a mapping, got {type(data).__name__}")
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``: mappings merge recursively, other values replace."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_with_bases(path: str | os.PathLike[str], _stack: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Load ``path`` and resolve its ``_base_`` chain (depth first, in list order)."""
    p = Path(path).resolve()
    if p in _stack:
        cycle = " -> ".join(str(s) for s in (*_stack, p))
        raise OptionsError(f"{p}: _base_ cycle: {cycle}")
    data = load_yaml(p)
    bases = data.pop("_base_", [])
    if isinstance(bases, (str, os.PathLike)):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise OptionsError(f"{p}: _base_ must be a file name or a list of file names, got {bases!r}")
    merged: dict[str, Any] = {}
    for base in bases:
        base_path = (p.parent / base) if not os.path.isabs(base) else Path(base)
        if not base_path.is_file():
            raise OptionsError(f"{p}: _base_ file {base!r} not found (looked for {base_path})")
        merged = deep_merge(merged, load_with_bases(base_path, (*_stack, p)))
    return deep_merge(merged, data)



def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (YAML-typed values) to a copy of ``data``."""
    out = deep_merge({}, data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise OptionsError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. train.optim.lr=2e-4")
        bad = yaml.reader.Reader.NON_PRINTABLE.search(raw)
        if bad:  # NUL, BEL, ESC...: what YAML refuses, said of the value (no line/column in one argument)
            raise OptionsError(
                f"--set {item!r}: the value of {key} holds the character {_describe_character(bad.group()[0])}, "
                "which YAML does not allow; remove it"
            )
        value = _yaml_load(raw, f"--set {item!r}") if raw.strip() else None
        _set(out, key, value, f"--set {item!r}")
    return out


def set_option(data: dict[str, Any], key: str, value: Any, what: str) -> dict[str, Any]:
    """A copy of ``data`` with the dotted ``key`` set to ``value`` (already typed; mappings on the
    way are created, list items are named by index); ``what`` (e.g. ``--tile 256``) leads errors."""
    if not key or any(not part for part in key.split(".")):
        raise OptionsError(f"{what}: {key!r} is not a dotted option key")
    out = deep_merge({}, data)
    _set(out, key, value, what)
    return out


def _set(out: dict[str, Any], key: str, value: Any, what: str) -> None:
    node: Any = out
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[_list_index(node, part, parts[: depth + 1], what)]
            continue
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, Mapping):
            child = node[part] = dict(child)
        elif not isinstance(child, list):
            raise OptionsError(
                f"{what}: {'.'.join(parts[: depth + 1])} is a {type(child).__name__}, not a mapping"
            )
        node = child
    if isinstance(node, list):
        node[_list_index(node, parts[-1], parts, what)] = value
    else:
        node[parts[-1]] = value


def _list_index(node: list, part: str, parts: list[str], what: str) -> int:
    if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
        raise OptionsError(f"{what}: {'.'.join(parts)}: {part!r} is not an index of a list of {len(node)}")
    return int(part)
