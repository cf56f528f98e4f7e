"""What a resumed run may change in its options, and how each change takes effect.

A resumed run compares its options with those the checkpoint was trained with (saved in the
checkpoint's state; for checkpoints of older versions, the experiment's newest ``options*.yml``)
and decides per key (:data:`RULES`, the most specific prefix wins):

* **applied**: the schedule and length of the run (``train.total_iter``, ``train.scheduler.*``,
  ``train.warmup_*``: the scheduler is rebuilt at the resumed iteration), the optimizer's
  hyper-parameters (``train.optim.lr`` becomes the schedule's base rate; ``weight_decay``,
  ``betas``, ``eps``, ``momentum``... are set in the restored optimizer), ``train.ema_decay``,
  ``grad_clip``, ``nan_policy``, mixed precision and compilation, and everything that only
  observes the run: ``logger``, ``val``, ``inference``, validation datasets, the training
  loader's worker settings, a moved training data folder (``datasets.train.dataroot_*``: the same
  images in another place), ``dist``, ``threads``;
* **ignored**: ``name``, ``path``, ``test``, ``train.pretrain`` (a resumed run takes its weights
  from the checkpoint);
* **refused**, with one line naming the key: the architecture (``model.*``), the training data
  (``datasets.train.*`` but its loader settings), ``seed``, the optimizer type (its saved state
  belongs to it), the losses, ``grad_accum``, progressive stages, batch mixing and the training
  step (``train.step``: a discriminator, its optimizer and loss). A key no rule
  knows is refused too (unless one of the two lacks it: a setting added or dropped since). Such a
  change is a new experiment: start one from the checkpoint's weights with ``train.pretrain``.

Every applied change is printed (one line) before training continues.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from irframe.errors import OptionsError
from irframe.nn.weights import a_or_an

Verdict = Literal["apply", "schedule", "optim", "ignore", "refuse"]

_LOADER_ONLY = ("num_workers", "pin_memory", "persistent_workers", "prefetch_factor")
_NEW_EXPERIMENT = "start a new experiment from these weights with train.pretrain"
_UNKNOWN = "irframe does not know whether a resumed run may change it"

RULES: tuple[tuple[str, Verdict, str], ...] = (
    ("name", "ignore", ""),
    ("path", "ignore", ""),
    ("test", "ignore", ""),
    ("train.pretrain", "ignore", "a resumed run takes its weights from the checkpoint"),
    ("threads", "apply", ""),
    ("deterministic", "apply", ""),
    ("dist", "apply", ""),
    ("logger", "apply", ""),
    ("val", "apply", ""),
    ("inference", "apply", ""),
    ("model", "refuse", "the checkpoint's weights belong to the architecture they were trained with"),
    ("seed", "refuse", "the run's data order and augmentations follow it"),
    *((f"datasets.train.{key}", "apply", "") for key in _LOADER_ONLY),
    ("datasets.train", "refuse", "a resumed run continues its position in the same training data"),
    ("datasets", "apply", ""),  # validation sets
    ("train.total_iter", "apply", ""),
    ("train.scheduler", "schedule", ""),
    ("train.warmup_iter", "schedule", ""),
    ("train.warmup_schedule", "schedule", ""),
    ("train.optim.type", "refuse", "the saved optimizer state belongs to it"),
    ("train.optim.amsgrad", "refuse", "the saved optimizer state has no (or an unused) extra moment"),
    ("train.optim", "optim", ""),
    ("train.ema_decay", "apply", ""),
    ("train.grad_clip", "apply", ""),
    ("train.nan_policy", "apply", ""),
    ("train.compile", "apply", ""),
    ("train.mixed_precision", "apply", ""),
    ("train.find_unused_parameters", "apply", ""),
    ("train.losses", "refuse", "they define what the run optimises"),
    ("train.grad_accum", "refuse", "the global batch and the saved data position count in it"),
    ("train.progressive", "refuse", "its stages set the data the run sees at each iteration"),
    ("train.mixing_augs", "refuse", "it changes the training data"),
    ("train.step", "refuse", "the training step (its networks, losses and optimizers) defines what the run optimises"),
)


@dataclass(frozen=True)
class Change:
    """One option that differs between the checkpoint's run and this one."""

    key: str
    old: Any
    new: Any
    verdict: Verdict
    why: str = ""

    def text(self) -> str:
        return f"{self.key} {_short(self.old)} -> {_short(self.new)}"


_MISSING = object()


def _short(value: Any) -> str:
    if value is _MISSING:
        return "(unset)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def rule_for(key: str) -> tuple[Verdict, str]:
    """The verdict on changing ``key`` (a dotted option path) in a resume, and why."""
    parts = key.split(".")
    if parts[:2] == ["datasets", "train"] and len(parts) == 3 and parts[2].startswith("dataroot"):
        return "apply", "the same images in another place (the run continues its position in them)"
    for prefix, verdict, why in RULES:
        if key == prefix or key.startswith(prefix + "."):
            return verdict, why
    return "refuse", _UNKNOWN


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and other values are leaves."""
    if isinstance(data, Mapping) and (data or not prefix):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def _normal(value: Any) -> Any:
    # tuples and lists compare alike; ints and floats of equal value too
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return value


def diff_options(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """The options that differ, each with its verdict (:func:`rule_for`)."""
    a, b = flatten(old), flatten(new)
    changes = []
    for key in sorted(set(a) | set(b)):
        before, after = a.get(key, _MISSING), b.get(key, _MISSING)
        if (before is _MISSING and after is None) or (after is _MISSING and before is None):
            continue  # a key unset in one and null in the other (a newer schema's default)
        if _normal(before) == _normal(after):
            continue
        verdict, why = rule_for(key)
        if why == _UNKNOWN and _MISSING in (before, after):  # a setting added to (or dropped from) irframe since
            verdict, why = "apply", "a setting one of the two versions does not have"
        changes.append(Change(key, before, after, verdict, why))
    return changes


def saved_options(state: Mapping[str, Any], experiment: Path | None) -> dict[str, Any] | None:
    """The options the resumed checkpoint was trained with: those in its state, else (checkpoints of
    older versions) the newest ``options*.yml`` of ``experiment``; ``None`` when neither exists."""
    options = state.get("options")
    if isinstance(options, Mapping):
        return dict(options)
    if experiment is None:
        return None
    files = [p for p in [experiment / "options.yml", *experiment.glob("options_*.yml")] if p.is_file()]
    if not files:
        return None
    import yaml

    newest = max(files, key=lambda p: (p.name != "options.yml", p.name))
    try:
        data = yaml.safe_load(newest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def check_changes(changes: list[Change], source: str, checkpoint: Path, *, channels: int | None = None) -> None:
    """Refuse the changes a resume may not make, in one short line: another arch is named as such
    (both names and the fix); otherwise the refused keys (three shown, the rest counted), the fix,
    then why. ``channels``: the input channels of the model the options build, to name a gray or
    RGB checkpoint resumed with options of other channels."""
    refused = sorted((c for c in changes if c.verdict == "refuse"), key=lambda c: c.key.split(".")[0] != "model")
    if not refused:
        return
    arch = next((c for c in refused if c.key == "model.type"), None)
    if arch is not None and isinstance(arch.old, str) and isinstance(arch.new, str):
        raise OptionsError(
            f"{source}: cannot resume {checkpoint}: it holds {a_or_an(arch.old)} model, the options build "
            f"{a_or_an(arch.new)} (model.type); fix: give this run another name (--set name=...) for a new "
            "experiment, or start it without --resume (path.resume)"
        )
    channels_note = _channels_note(refused, channels)
    if channels_note:  # the weights cannot go on as a new experiment either: keep, or start afresh
        kept = ", ".join(f"{c.key}: {_short(c.old)}" for c in refused[:_SHOWN] if c.old is not _MISSING)
        raise OptionsError(
            f"{source}: cannot resume {checkpoint}: {channels_note}; fix: keep what the run started with ({kept}"
            f"{_more(refused)}), or start a new experiment (another name, or without --resume)"
        )
    shown = ", ".join(c.text() for c in refused[:_SHOWN]) + _more(refused)
    why = "; ".join(dict.fromkeys(c.why for c in refused if c.why))
    weights = checkpoint / "model.safetensors"
    raise OptionsError(
        f"{source}: cannot resume {checkpoint} with changed {shown}: keep the values the run started with, or "
        f"{_NEW_EXPERIMENT} (--set train.pretrain.path={weights})" + (f" ({why})" if why else "")
    )


_SHOWN = 3  # refused changes named in the message; a count says the rest


def _more(refused: list[Change]) -> str:
    return f" and {len(refused) - _SHOWN} more" if len(refused) > _SHOWN else ""


def _channels_note(refused: list[Change], channels: int | None) -> str:
    """``a gray (1-channel) checkpoint, the options build 3 channels`` when the model's input
    channels are among the refused changes (``channels``: what the options build, for a key they
    leave out); ``""`` otherwise."""
    from irframe.nn.configs import input_channels_note

    model = [c for c in refused if c.key.split(".")[0] == "model"]
    return input_channels_note([(c.key, c.old, c.new if isinstance(c.new, int) else channels) for c in model])


def apply_changes(
    changes: list[Change],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    train: Any,
    source: str,
) -> tuple[torch.optim.lr_scheduler.LRScheduler, str | None]:
    """Apply the optimizer and schedule changes to the restored ``optimizer``/``scheduler``.

    ``train`` is the run's ``train`` options. Changed optimizer hyper-parameters are set in every
    parameter group (``lr`` as the base rate the schedule scales); then the scheduler is rebuilt
    from the options and moved to the restored iteration, so the rate follows the new schedule
    from there. Returns the scheduler to use and the line to print (``None`` when nothing changed).
    """
    if not changes:
        return scheduler, None
    rebuilt = any(c.verdict in ("schedule", "optim") for c in changes)
    if rebuilt:
        cfg = {k: v for k, v in dict(train.optim).items() if k != "type"}
        for change in changes:
            if change.verdict != "optim":
                continue
            field = change.key.split(".", 2)[2].split(".")[0]
            if field != "lr" and field not in optimizer.param_groups[0]:
                raise OptionsError(
                    f"{source}: cannot resume with changed {change.text()}: the restored optimizer has no "
                    f"setting {field!r} to change; keep the old value, or {_NEW_EXPERIMENT}"
                )
        for group in optimizer.param_groups:
            for key, value in cfg.items():
                if key == "lr":
                    group["initial_lr"] = float(value)
                elif key in group:
                    group[key] = tuple(value) if isinstance(group[key], tuple) else value
        scheduler = rebuild_scheduler(optimizer, train, scheduler.last_epoch)
    lr = optimizer.param_groups[0]["lr"]
    line = "resumed with changed options: " + ", ".join(c.text() for c in changes if c.verdict != "ignore")
    ignored = [c.key for c in changes if c.verdict == "ignore" and c.why]
    if rebuilt:
        line += f"; the optimizer and schedule follow them from iteration {scheduler.last_epoch} (lr now {lr:.3e})"
    if ignored:
        line += f"; not used when resuming: {', '.join(ignored)}"
    return scheduler, line


def rebuild_scheduler(
    optimizer: torch.optim.Optimizer, train: Any, iteration: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The scheduler of ``train`` (its options) over ``optimizer`` whose groups hold ``initial_lr``,
    positioned after ``iteration`` steps (closed form for irframe's schedulers; others are stepped)."""
    from irframe.train.optim import build_scheduler
    from irframe.train.schedulers import IterScheduler

    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"]
    scheduler = build_scheduler(optimizer, train.scheduler, train.warmup_iter, train.warmup_schedule)
    if isinstance(scheduler, IterScheduler):
        scheduler.last_epoch = iteration
        for group, lr in zip(optimizer.param_groups, scheduler.get_lr(), strict=True):
            group["lr"] = lr
        scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
    else:
        with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()"
            warnings.simplefilter("ignore")
            while scheduler.last_epoch < iteration:
                scheduler.step()
    return scheduler
