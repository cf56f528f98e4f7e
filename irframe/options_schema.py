"""The option schema: typed, strict sections (pydantic) and how a schema problem is worded.

An unknown or misspelled key is an error naming its dotted path with the closest valid key (or,
for another framework's key, where irframe keeps that setting); a wrong type likewise; booleans are
never numbers. Component mappings (``{type: Name, ...}``) are only required to name a ``type``
here; their keys are checked against the registered component by :mod:`irframe.options_checks`.
The schema doubles as documentation: every field's ``description`` is what the key does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from irframe.registry.arguments import bool_allowed
from irframe.registry.foreign_keys import key_hint
from irframe.text import clip, short

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
    step: Component | None = Field(
        None,
        description="what one optimizer step does, {type: Name, ...} from the step registry: null is "
        "SupervisedStep (train.losses on the model's output); AdversarialStep adds a discriminator "
        "(network_d, optim_d, gan, net_d_iters, ...: ESRGAN, Real-ESRGAN); plugins register others",
    )

    @field_validator("optim", "scheduler", "step")
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


class WandbOptions(_Strict):
    """Weights & Biases (``logger.trackers: [wandb]``); offline with ``WANDB_MODE=offline``."""

    entity: str | None = Field(None, description="the wandb team or user (default: wandb's own)")
    resume_id: str | None = Field(
        None, description="log into this wandb run (BasicSR's logger.wandb.resume_id); default: the run this "
        "experiment started (<experiment>/trackers.json), or a new one",
    )


class MlflowOptions(_Strict):
    """MLflow (``logger.trackers: [mlflow]``)."""

    tracking_uri: str | None = Field(
        None, description="where runs go: a server URL, a database (sqlite:///..., needs the full mlflow package) "
        "or a file store (file:///...); default: MLFLOW_TRACKING_URI, else the file store "
        "<path.experiments_root>/mlruns",
    )


class LoggerOptions(_Strict):
    print_freq: int = Field(100, ge=1)
    checkpoint_freq: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(3, ge=1, description="newest iter_* checkpoints kept (best/ is kept apart)")
    tensorboard: bool = Field(
        True, description="TensorBoard in <experiment>/tensorboard (the same as listing tensorboard in trackers)"
    )
    trackers: list[str] = Field(
        default_factory=list,
        description="experiment trackers through accelerate, besides TensorBoard: wandb, mlflow, comet_ml, aim, "
        "clearml, dvclive, swanlab, trackio (pip install 'irframe[wandb]' / 'irframe[mlflow]'); they get the "
        "options, losses, learning rate, iteration time, validation scores and images",
    )
    project: str = Field(
        "irframe", description="the wandb project / MLflow experiment (TensorBoard: a sub-folder) runs are grouped "
        "in; a run is named after its experiment folder",
    )
    val_images: int = Field(
        2, ge=0, description="validation images per set sent to the trackers at each validation (input, output, "
        "target)",
    )
    wandb: WandbOptions = Field(default_factory=WandbOptions)
    mlflow: MlflowOptions = Field(default_factory=MlflowOptions)
    progress_bar: bool = Field(
        True, description="the tqdm bar, on a terminal only: when the output goes to a file or a pipe, training "
        "prints plain log lines",
    )


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
    backend: Literal["torch", "onnxruntime"] = Field(
        "torch", description="what runs the model in tools/test.py and tools/infer.py: torch, or onnxruntime (the "
        "model exported once to ONNX and cached by checkpoint hash under $IRFRAME_CACHE/onnx; float32, CPU; "
        "needs the [export] extra)",
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

    @model_validator(mode="after")
    def _backend(self) -> InferenceOptions:
        if self.backend != "onnxruntime":
            return self
        if self.precision != "fp32":
            raise ValueError(
                f"backend onnxruntime with precision {self.precision}: refused, the exported ONNX graph runs in "
                f"float32 and {self.precision} is torch autocast; use precision fp32, or backend torch"
            )
        if self.compile:
            raise ValueError(
                "backend onnxruntime with compile: refused, compile is torch.compile of the torch model and "
                "onnxruntime runs its own optimised graph; choose one"
            )
        return self

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
    # how a problem line names its key in that file (a translated file spells keys its own way)
    _spelling: Callable[[str], str] | None = PrivateAttr(None)

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

    def spelled(self, problem: str) -> str:
        """A problem line with its key as the source file spells it (``train.optim.lrr`` is
        ``train.optim_g.lrr`` in a BasicSR-style file); unchanged for a native file."""
        return problem if self._spelling is None else self._spelling(problem)

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



def schema_problems(data: Mapping[str, Any]) -> tuple[Options | None, list[str]]:
    """Validate ``data`` against :class:`Options`: ``(options, [])``, or ``(None, one line per problem)``."""
    try:
        return Options.model_validate(dict(data)), []
    except ValidationError as exc:
        return None, list(dict.fromkeys(_format_error(e) for e in exc.errors()))
