"""Option files: safe YAML loading, ``_base_`` inheritance, ``--set`` overrides, strict validation.

The one path from a file to validated options::

    opts = load_options("options/demo.yml", overrides=["train.optim.lr=2e-4"])

* YAML is parsed with a safe loader (a ``!!python/object`` tag is refused) that also rejects
  duplicate keys.
* ``_base_: [a.yml, b.yml]`` (paths relative to the file) are loaded first and deep-merged in order,
  then the file's own keys on top; mappings merge, everything else replaces. Cycles are errors.
* ``--set a.b.c=VALUE`` overrides take YAML-typed values (``2e-4`` is a float, ``[1,2]`` a list,
  ``null`` is None).
* The top-level schema is strict: an unknown or misspelled key is an error naming its dotted path
  with the closest valid key; a wrong type likewise. Component mappings (``{type: Name, ...}``) are
  checked against the registered component's signature by :func:`check_components`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from irframe.errors import OptionsError
from irframe.registry import bool_allowed, clip, join_problems, key_hint, short

MAX_YAML_NODES = 1_000_000
"""A YAML document whose aliases expand to more nodes than this is refused (an alias bomb)."""
MAX_YAML_DEPTH = 100
"""A YAML document nested deeper than this is refused."""

# ----------------------------------------------------------------------------------------------
# YAML loading
# ----------------------------------------------------------------------------------------------


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


def _yaml_load(text: str, source: str) -> Any:
    if _flow_too_deep(text):
        raise OptionsError(f"{source}: refused: nested more than {MAX_YAML_DEPTH} levels deep")
    loader = _StrictSafeLoader(text)
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
    if not p.is_file():
        raise OptionsError(f"{p}: option file not found")
    raw = p.read_bytes()
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
        value = _yaml_load(raw, f"--set {item!r}") if raw.strip() else None
        node: Any = out
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                node = node[_list_index(node, part, parts[: depth + 1], item)]
                continue
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif isinstance(child, Mapping):
                child = node[part] = dict(child)
            elif not isinstance(child, list):
                raise OptionsError(
                    f"--set {item!r}: {'.'.join(parts[: depth + 1])} is a {type(child).__name__}, not a mapping"
                )
            node = child
        if isinstance(node, list):
            node[_list_index(node, parts[-1], parts, item)] = value
        else:
            node[parts[-1]] = value
    return out


def _list_index(node: list, part: str, parts: list[str], item: str) -> int:
    if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
        raise OptionsError(f"--set {item!r}: {'.'.join(parts)}: {part!r} is not an index of a list of {len(node)}")
    return int(part)


# ----------------------------------------------------------------------------------------------
# Schema
# ----------------------------------------------------------------------------------------------

Component = dict[str, Any]  # {type: Name, **kwargs}; checked against the registry by check_components


class _NoBoolNumbers(BaseModel):
    """Booleans are not numbers: ``print_freq: true`` is an error, not 1 (pydantic's lax mode)."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_numbers(cls, value: Any, info: Any) -> Any:
        field = cls.model_fields.get(info.field_name) if info.field_name else None
        if field is not None and not bool_allowed(field.annotation, value):
            raise ValueError("expected a number, not a boolean (booleans are not numbers)")
        return value


class _Strict(_NoBoolNumbers):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _require_type(value: Any) -> Any:
    if value is not None and (not isinstance(value, dict) or "type" not in value):
        raise ValueError("expected a mapping with a 'type' key naming a registered component")
    return value


class LoaderOptions(_NoBoolNumbers):
    """A dataset plus its DataLoader settings. Keys other than the loader's are the dataset's kwargs."""

    model_config = ConfigDict(extra="allow")

    type: str
    batch_size: int = Field(1, ge=1, description="per process (BasicSR's batch_size_per_gpu)")
    num_workers: int = Field(0, ge=0)
    shuffle: bool | None = None  # default: True for train, False otherwise
    pin_memory: bool = False
    persistent_workers: bool = False
    prefetch_factor: int | None = None
    enlarge_ratio: int = Field(
        1, ge=1, description="training: each pass over the data shows every sample this many times, in one "
        "shuffled order (BasicSR's dataset_enlarge_ratio)",
    )

    def dataset_cfg(self) -> dict[str, Any]:
        """The ``{type, **kwargs}`` mapping that builds the dataset."""
        return {"type": self.type, **(self.model_extra or {})}


class ProgressiveOptions(_Strict):
    """Restormer's progressive learning: patch and batch size per stage (iterations per stage)."""

    iters: list[int]
    patch_sizes: list[int]
    batch_sizes: list[int]

    @field_validator("patch_sizes", "batch_sizes")
    @classmethod
    def _same_length(cls, v: list[int], info: Any) -> list[int]:
        iters = info.data.get("iters")
        if iters is not None and len(v) != len(iters):
            raise ValueError(f"needs {len(iters)} entries (one per stage in 'iters'), got {len(v)}")
        return v


class LossOptions(_NoBoolNumbers):
    """One term of the weighted loss sum; keys other than ``weight`` are the loss's kwargs."""

    model_config = ConfigDict(extra="allow")

    type: str
    weight: float | None = Field(
        None, description="multiplier in the sum; default: the loss's default_weight (IPT contrastive 0.1) or 1"
    )

    def loss_cfg(self) -> dict[str, Any]:
        return {"type": self.type, **(self.model_extra or {})}


class PretrainOptions(_Strict):
    """Start from a pre-trained checkpoint (fine-tuning)."""

    path: str
    strict: bool = True
    key: str = "auto"  # params / params_ema / state_dict / auto
    drop: list[str] = Field(default_factory=list, description="glob patterns of keys not loaded (e.g. 'head.*')")


class MixingOptions(_Strict):
    """Restormer's mixing augmentation (``train.mixing_augs``), applied to each training batch."""

    mixup: bool = Field(False, description="mix each batch with a permutation of itself (lq and gt alike)")
    mixup_beta: float = Field(1.2, gt=0, description="the mixing weight is drawn from Beta(mixup_beta, mixup_beta)")
    use_identity: bool = Field(False, description="leave half of the batches unmixed (Restormer's identity option)")


class TrainOptions(_Strict):
    """The training loop's settings."""

    total_iter: int = Field(..., ge=1)
    optim: Component
    scheduler: Component | None = None
    warmup_iter: int = Field(0, ge=0)
    warmup_schedule: Literal["after", "under"] = Field(
        "after", description="'after': the schedule starts once the warm-up ends (shifted by warmup_iter); "
        "'under': it runs from iteration 0 underneath the warm-up, which ramps the initial rate (BasicSR's way)",
    )
    losses: list[LossOptions] = Field(..., min_length=1)
    ema_decay: float = Field(0.0, ge=0.0, lt=1.0, description="0 disables EMA")
    grad_clip: float | None = Field(None, gt=0)
    grad_accum: int = Field(1, ge=1)
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    compile: bool = Field(
        False, description="torch.compile the model (inductor, through accelerate's dynamo plugin); checkpoints "
        "keep the plain parameter names",
    )
    progressive: ProgressiveOptions | None = None
    mixing_augs: MixingOptions | None = None
    nan_policy: Literal["stop", "skip"] = "stop"
    pretrain: PretrainOptions | None = None
    find_unused_parameters: bool | None = Field(
        None,
        description="DDP: allow parameters without gradients in a step (IPT's other heads, PromptIR's unused "
        "layers); default: what the model declares (has_unused_parameters, or several spec.tasks)",
    )

    @field_validator("optim", "scheduler")
    @classmethod
    def _components(cls, v: Any) -> Any:
        return _require_type(v)


class ValOptions(_Strict):
    """Validation during training."""

    freq: int = Field(1000, ge=1)
    metrics: list[Component] = Field(default_factory=list)
    save_images: bool = False
    max_images: int | None = Field(None, ge=1, description="save at most this many images per validation")
    best_metric: str | None = Field(
        None, description="metric name tracked for the best checkpoint (default: the first)"
    )
    use_ema: bool = Field(True, description="validate the EMA weights when train.ema_decay > 0")


class LoggerOptions(_Strict):
    print_freq: int = Field(100, ge=1)
    checkpoint_freq: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(3, ge=1, description="newest iter_* checkpoints kept (best/ is kept apart)")
    tensorboard: bool = True
    progress_bar: bool = True


class PathOptions(_Strict):
    experiments_root: str = "experiments"
    resume: str | None = Field(None, description="'auto' or a checkpoint folder")


class DistOptions(_Strict):
    """Multi-process runs (torchrun / accelerate launch)."""

    timeout_s: int = Field(
        1800, ge=1, description="seconds a process waits for the others (a hung, stopped or dead process) before "
        "the run stops with an error naming the setting; torch's default is 1800"
    )


class InferenceOptions(_Strict):
    """How tools/test.py, tools/infer.py and validation run the model (the model's spec gives the defaults)."""

    tile: int | Literal["auto"] | None = Field(
        None,
        description="tile side in input pixels; 'auto': the largest tile whose estimated peak memory fits "
        "max_memory (a probe measures the model); null: the whole image at once",
    )
    tile_overlap: int | None = Field(None, ge=0)
    self_ensemble: bool = False
    task: str | int | None = None
    max_memory: str | int | None = Field(
        None,
        description="memory budget of tile: auto, e.g. '8GB' or '512MB' (binary units); default: what the "
        "device has free, times a safety factor",
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="bf16/fp16 run the model under autocast (fp16 needs a GPU); outputs stay float32"
    )
    compile: bool = Field(
        False, description="torch.compile the model for tools/test.py and tools/infer.py (the first image of "
        "each size compiles); validation during training runs it uncompiled",
    )

    @field_validator("tile", mode="before")
    @classmethod
    def _tile(cls, v: Any) -> Any:
        # One check for the whole union, so a bad value gives one message, not one per member.
        if v is None:
            return None
        if isinstance(v, str):
            text = v.strip().lower()
            if text == "auto":
                return "auto"
            v = int(text) if text.isdigit() else v
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError("expected a positive tile size or 'auto'")
        return v

    @field_validator("max_memory", mode="before")
    @classmethod
    def _memory(cls, v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ValueError("expected a memory size such as '8GB' or a number of bytes")
        from irframe.nn.autotile import parse_memory  # torch is imported only when the key is used

        size = parse_memory(v)  # a ValueError naming the value
        return size if isinstance(v, float) else v  # keep '8GB' readable in saved options and leaderboards

    @property
    def max_memory_bytes(self) -> int | None:
        """``max_memory`` in bytes (``None``: the device's free memory decides)."""
        if self.max_memory is None:
            return None
        from irframe.nn.autotile import parse_memory

        return parse_memory(self.max_memory)


class TestOptions(_Strict):
    """Benchmarks run by tools/test.py (results merge into one leaderboard under ``results_root``)."""

    datasets: dict[str, LoaderOptions] = Field(default_factory=dict)
    metrics: list[Component] = Field(default_factory=list)
    save_images: bool = Field(True, description="save every restored image (PNG, the input's bit depth)")
    checkpoint: str | None = Field(None, description="weights file or checkpoint folder (--checkpoint wins)")
    results_root: str = Field("results", description="leaderboard folder (--out wins)")
    model_name: str | None = Field(None, description="leaderboard row name (default: the options' name)")
    param_key: Literal["auto", "params", "params_ema"] = Field(
        "auto", description="weights of a file holding both params and params_ema; auto: params_ema (--param-key wins)"
    )
    report_images: int = Field(3, ge=0, description="images per data set shown as crops in report.html")
    report_crop: int = Field(128, ge=8, description="crop side (output pixels) in report.html")

    @field_validator("metrics")
    @classmethod
    def _metric_components(cls, v: list[Any]) -> list[Any]:
        for item in v:
            _require_type(item)
        return v


class Options(_Strict):
    """The whole option file."""

    name: str
    seed: int = 0
    deterministic: bool = False
    threads: int | Literal["auto"] = Field(
        "auto",
        description="CPU threads for torch in the tools (train/test/infer/demo); 'auto': cores available / local "
        "processes - loader workers, fewer on a busy machine (irframe.threads); --threads wins",
    )
    model: Component | None = Field(
        None, description="{type: Arch, ...}; required to train; tools/test.py and tools/infer.py detect it from the "
        "checkpoint when absent"
    )
    datasets: dict[str, LoaderOptions] = Field(default_factory=dict)
    train: TrainOptions | None = None
    val: ValOptions | None = None
    logger: LoggerOptions = Field(default_factory=LoggerOptions)
    path: PathOptions = Field(default_factory=PathOptions)
    dist: DistOptions = Field(default_factory=DistOptions)
    inference: InferenceOptions = Field(default_factory=InferenceOptions)
    test: TestOptions | None = None

    # where the options came from (not a YAML key)
    _source: str = PrivateAttr("<options>")

    @field_validator("model")
    @classmethod
    def _component(cls, v: Any) -> Any:
        return _require_type(v)

    @field_validator("threads")
    @classmethod
    def _positive_threads(cls, v: Any) -> Any:
        if isinstance(v, int) and v < 1:
            raise ValueError(f"expected 'auto' or a positive number of threads, got {v}")
        return v

    @property
    def source(self) -> str:
        return self._source

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as saved beside an experiment (round-trips through :func:`validate_options`)."""
        return self.model_dump(mode="json", exclude_none=False)


def _model_fields(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """Field names of the schema class that owns ``loc`` (for suggestions)."""
    cls: Any = model
    for part in loc:
        if isinstance(part, int) or cls is None:
            continue
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        cls = _schema_class(ann)
    return list(getattr(cls, "model_fields", {}))


def _schema_class(ann: Any) -> Any:
    import typing

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        found = _schema_class(arg)
        if found is not None:
            return found
    return None


def _format_error(err: Mapping[str, Any]) -> str:
    """One schema problem as ``dotted.path: message`` (values bounded, hints only for close keys)."""
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "lax-", "json-")))]
    dotted = ".".join(clip(p) for p in loc)
    if err["type"] == "extra_forbidden":
        key = str(loc[-1])
        choices = _model_fields(Options, loc[:-1])
        return f"{dotted}: unknown key{key_hint(key, choices) or '.'} Valid keys here: {', '.join(choices)}"
    if err["type"] == "missing":
        return f"{dotted}: missing required key"
    msg = str(err["msg"])
    msg = msg[len("Value error, "):] if msg.startswith("Value error, ") else msg
    return f"{dotted}: {clip(msg)} (got {short(err.get('input'))})"


def format_problems(source: str, problems: Sequence[str]) -> str:
    """The message of one :class:`OptionsError` for all ``problems`` of the file ``source``."""
    return f"{source}: {join_problems(list(problems))}"


def validate_options(
    data: Mapping[str, Any], source: str = "<options>", *, check: bool = False, paths: bool | Sequence[str] = True
) -> Options:
    """Validate a plain mapping against the schema; raise one :class:`OptionsError` with every problem.

    With ``check``, the component mappings and ``paths`` are checked too (:func:`check_options`, on
    the same data, also when the schema found problems), so one run reports everything.
    """
    problems: list[str] = []
    opts: Options | None = None
    try:
        opts = Options.model_validate(dict(data))
    except ValidationError as exc:
        problems = list(dict.fromkeys(_format_error(e) for e in exc.errors()))
    if check:
        problems += [p for p in check_options(data, paths=paths) if p not in problems]
    if problems or opts is None:
        raise OptionsError(format_problems(source, problems))
    opts._source = source
    return opts


def load_options(
    path: str | os.PathLike[str],
    overrides: Sequence[str] = (),
    *,
    check: bool = False,
    paths: bool | Sequence[str] = True,
) -> Options:
    """Load, merge ``_base_`` files, apply ``--set`` overrides and validate one option file.

    ``check=True`` also checks every component mapping and the ``paths`` (:func:`check_options`)
    and reports all problems of the file in one :class:`OptionsError` (what the tools use).

    A BasicSR/Restormer-style file is translated into native options after the ``_base_`` merge
    and before the overrides (so ``--set`` takes native keys); see :mod:`irframe.compat.basicsr`.
    """
    from irframe.compat.basicsr import maybe_translate

    data = apply_overrides(maybe_translate(load_with_bases(path), str(path)), overrides)
    return validate_options(data, source=str(path), check=check, paths=paths)


def save_options(opts: Options, path: str | os.PathLike[str]) -> None:
    """Write the resolved options as YAML (atomically: temp file + rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(dump_options(opts), encoding="utf-8")
    os.replace(tmp, p)


def dump_options(opts: Options) -> str:
    """The resolved options as YAML text."""
    return yaml.safe_dump(opts.to_dict(), sort_keys=False, default_flow_style=None, width=100)


TRAIN_PATHS = ("datasets", "train")
"""Sections whose paths a training run needs (``datasets.*``, ``train.pretrain``)."""
TEST_PATHS = ("test",)
"""Sections whose paths a benchmark run needs (``test.datasets.*``)."""


def check_options(opts: Options | Mapping[str, Any], *, paths: bool | Sequence[str] = True) -> list[str]:
    """Every problem of the component mappings and paths of ``opts``, collected, nothing built.

    Checks each ``{type: Name, ...}`` mapping at any depth against its registry (name, keys,
    value types, required keys): ``model``, ``datasets.*`` (their nested sources and
    ``degradation`` pipelines), ``train.optim``, ``train.scheduler``, ``train.losses.*``,
    ``val.metrics.*``, ``test.datasets.*``, ``test.metrics.*``; with ``paths``, also that every
    path argument (``dataroot_*``...) and ``train.pretrain.path`` exist (``True``: everywhere; or
    the top-level sections a run uses, e.g. :data:`TRAIN_PATHS`; a run without ``train`` among them
    may leave ``model`` out, to take it from its checkpoint). ``opts`` may be validated
    options or the raw mapping of a file (then parts the schema refuses are skipped, not repeated).
    Returns one line per problem, each starting with its full dotted path; empty when all is well.
    Imports the registries (and so the plugins), but constructs no model and no dataset.
    """
    from irframe.registry import ARCHS, DATASETS, LOSSES, METRICS, OPTIMIZERS, SCHEDULERS

    data = opts.to_dict() if isinstance(opts, Options) else opts
    problems: list[str] = []
    if not isinstance(data, Mapping):
        return problems
    loader_keys = frozenset(LoaderOptions.model_fields) - {"type"}
    loss_keys = frozenset(LossOptions.model_fields) - {"type"}

    def check_paths(where: str) -> bool:
        return paths is True or (not isinstance(paths, bool) and where.split(".")[0] in paths)

    def component(
        registry: Any, cfg: Any, where: str, drop: frozenset[str] = frozenset(), skip: frozenset[str] = frozenset()
    ) -> None:
        if not isinstance(cfg, Mapping) or "type" not in cfg:
            return  # not a component mapping: the schema reports it
        kwargs = {k: v for k, v in cfg.items() if k not in drop}
        problems.extend(registry.problems(kwargs, where, skip=skip, paths=check_paths(where)))

    def named(value: Any) -> list[tuple[Any, Any]]:
        return list(value.items()) if isinstance(value, Mapping) else []

    def listed(value: Any) -> list[tuple[int, Any]]:
        return list(enumerate(value)) if isinstance(value, list) else []

    def section(key: str) -> Mapping[str, Any]:
        value = data.get(key)
        return value if isinstance(value, Mapping) else {}

    component(ARCHS, data.get("model"), "model")
    # a run that uses only other sections (test.py: TEST_PATHS) may take the model from its checkpoint
    training = isinstance(paths, bool) or "train" in paths
    if data.get("model") is None and data.get("train") is not None and training:
        problems.append("model: missing required key (training builds the model from it)")
    for name, cfg in named(data.get("datasets")):
        component(DATASETS, cfg, f"datasets.{name}", drop=loader_keys)
    train = section("train")
    component(OPTIMIZERS, train.get("optim"), "train.optim", skip=frozenset({"params"}))
    component(SCHEDULERS, train.get("scheduler"), "train.scheduler", skip=frozenset({"optimizer", "warmup_iter"}))
    for i, cfg in listed(train.get("losses")):
        component(LOSSES, cfg, f"train.losses.{i}", drop=loss_keys)
    pretrain = train.get("pretrain")
    if check_paths("train") and isinstance(pretrain, Mapping):
        path = pretrain.get("path")
        if isinstance(path, str) and path and not Path(path).exists():
            problems.append(f"train.pretrain.path: checkpoint not found: {clip(path)}")
    for i, cfg in listed(section("val").get("metrics")):
        component(METRICS, cfg, f"val.metrics.{i}")
    test = section("test")
    for name, cfg in named(test.get("datasets")):
        component(DATASETS, cfg, f"test.datasets.{name}", drop=loader_keys)
    for i, cfg in listed(test.get("metrics")):
        component(METRICS, cfg, f"test.metrics.{i}")
    return list(dict.fromkeys(problems))


def check_components(opts: Options, *, paths: bool | Sequence[str] = False) -> None:
    """Raise one :class:`OptionsError` (file name first) listing every problem :func:`check_options` finds.

    Runs before any work starts so that a typo in a dataset or loss key, or (with ``paths``, as in
    :func:`check_options`; the runs pass the sections they use) a missing data folder, fails at
    once, all of them in one run.
    """
    problems = check_options(opts, paths=paths)
    if problems:
        raise OptionsError(format_problems(opts.source, problems))

