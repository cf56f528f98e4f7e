"""The training loop: thin, on top of accelerate, with small collaborators doing the rest.

The :class:`Trainer` owns only the loop: fetch ``grad_accum`` micro-batches, hand them to the step
(:class:`~.step.TrainStep`: forward, losses, backward, clipping, optimizer steps, schedules, EMA;
:class:`~.step.SupervisedStep` or :class:`~.adversarial.AdversarialStep` or a plugin's), count,
report, validate, checkpoint. Validation (:class:`~.validation.Validator`), checkpoints
(:class:`~.training_state.Checkpointer`) and output (:class:`~.logger.TrainLogger`) are handed in
ready-made; :func:`irframe.train.build.build_trainer` builds them from options.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from irframe.errors import IrframeError
from irframe.nn.weights import unwrap_model
from irframe.train.logger import TrainLogger
from irframe.train.step import StepOutput, TrainStep
from irframe.train.training_state import Checkpointer
from irframe.train.validation import Validator, ValResult


class TrainingDiverged(IrframeError, RuntimeError):
    """The loss became NaN or infinite (``train.nan_policy: stop``)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run; the message says when and which checkpoint resumes it."""


@dataclass
class LoopSettings:
    """The loop's numbers, taken from the options."""

    total_iter: int
    grad_accum: int = 1
    print_freq: int = 100
    val_freq: int | None = None
    checkpoint_freq: int = 1000
    best_metric: str | None = None
    val_use_ema: bool = True  # validate the EMA weights when there are some


@dataclass
class BestScore:
    """The best validation score so far."""

    metric: str
    value: float
    iteration: int
    higher_is_better: bool

    def improved_by(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return value > self.value if self.higher_is_better else value < self.value


class LossMeter:
    """Sums step losses on the device between two reports, so a step never waits for the device.

    Each value (the headline ``loss`` and every part in ``names``) is averaged over the steps that
    computed it: an adversarial step's generator terms are missing in the iterations that only
    update the discriminator. It also keeps the earliest iteration with a value that was not
    finite: policy ``stop`` raises at the next report, validation or checkpoint, before anything
    is written.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.lr = float("nan")  # the rate of the last step
        width = len(names) + 1
        self._sums: torch.Tensor | None = None  # [loss, *parts, then a count for each] since the last report
        self._width = width
        self._first_bad: torch.Tensor | None = None  # earliest non-finite iteration, -1: none
        self._index: dict[tuple[Any, ...], torch.Tensor] = {}

    def add(self, out: StepOutput, iteration: int) -> None:
        """Account one step (iteration numbers start at 1)."""
        self.lr = out.lr
        if out.skipped:
            return
        named = [("", out.loss)] if out.loss is not None else []
        named += [(n, out.parts[n]) for n in self.names if n in out.parts]
        if not named:
            return
        values = torch.stack([v.detach().float().reshape(()) for _, v in named])
        key = (values.device, *(n for n, _ in named))
        where = self._index.get(key)
        if where is None:  # where each present value goes in the row (once per combination)
            slots = [0 if n == "" else 1 + self.names.index(n) for n, _ in named]
            where = self._index[key] = torch.tensor(slots, device=values.device)
        finite = torch.isfinite(values).all()
        kept = torch.where(finite, values, torch.zeros_like(values))
        row = values.new_zeros(2 * self._width)
        row[where] = kept
        row[where + self._width] = finite.float()
        self._sums = row if self._sums is None else self._sums + row
        flag = torch.where(finite, -1, iteration)
        self._first_bad = flag if self._first_bad is None else torch.where(self._first_bad >= 0, self._first_bad, flag)

    def sync(self, combine: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[int, torch.Tensor]:
        """Host copies of (earliest non-finite iteration or -1, the window's sums and counts);
        ``combine`` merges the numbers of all processes."""
        first = self._first_bad if self._first_bad is not None else torch.tensor(-1)
        sums = self._sums if self._sums is not None else torch.zeros(2 * self._width, device=first.device)
        packed = torch.cat([first.reshape(1).double(), sums.double()])
        if combine is not None:
            packed = combine(packed)
        packed = packed.cpu()
        return int(packed[0]), packed[1:]

    def report(
        self, combine: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> tuple[int, float, dict[str, float], float]:
        """(earliest non-finite iteration, mean loss, mean parts, last rate) of the window; starts a
        new one. The loss is NaN, and a part left out, when no step of the window computed it."""
        first_bad, packed = self.sync(combine)
        self._sums = None
        sums, counts = packed[: self._width], packed[self._width :]
        means = [float(s / c) if c > 0 else None for s, c in zip(sums.tolist(), counts.tolist())]
        loss = means[0] if means[0] is not None else float("nan")
        parts = {n: m for n, m in zip(self.names, means[1:]) if m is not None}
        return first_bad, loss, parts, self.lr


class Trainer:
    """Runs the loop from ``start_iter`` to ``settings.total_iter``.

    Args:
        accelerator: the :class:`accelerate.Accelerator` (device, DDP, mixed precision).
        step: the training step, already prepared (:meth:`~.step.TrainStep.prepare`): it owns the
            networks (``step.model`` is the one validated and delivered), the EMA, the losses, the
            optimizers and their schedules.
        batches: endless iterator of training micro-batches (this process's share), positioned at
            ``micro_step``.
        settings: loop numbers.
        checkpointer, logger: collaborators; ``validator`` is optional.
        mixing: batch augmentation ``mixing(batch, iteration, micro_index)`` applied on the device
            before the step (:class:`~.mixing.MixingAugment`, ``train.mixing_augs``).
        state: the restored trainer state when resuming (``iteration``, ``micro_step``, ``best``).
    """

    def __init__(
        self,
        accelerator: Any,
        step: TrainStep,
        batches: Iterator[Mapping[str, Any]],
        settings: LoopSettings,
        checkpointer: Checkpointer,
        logger: TrainLogger,
        *,
        validator: Validator | None = None,
        state: Mapping[str, Any] | None = None,
        mixing: Callable[[Mapping[str, Any], int, int], Mapping[str, Any]] | None = None,
    ) -> None:
        self.accelerator = accelerator
        self.mixing = mixing
        self.step = step
        self.model: nn.Module = step.model
        self.ema = step.ema
        self.batches = batches
        self.settings = settings
        self.checkpointer = checkpointer
        self.logger = logger
        self.validator = validator
        state = state or {}
        self.iteration = int(state.get("iteration", 0))
        self.micro_step = int(state.get("micro_step", 0))
        best = state.get("best")
        self.best = BestScore(**best) if best else None
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.last_checkpoint: Path | None = None
        self.last_val: ValResult | None = None
        self.meter = LossMeter(list(step.log_names))
        # Under DDP and torch.compile (train.compile): EMA, validation and checkpoints use the plain module.
        self._raw_model = unwrap_model(self.model)
        self._window_start = time.perf_counter()
        self._window_iters = 0
        self.phase = "during training"  # what the loop is doing (for the message of an interruption)

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> ValResult | None:
        """Train to ``total_iter``; return the last validation result (if any)."""
        s = self.settings
        if self.iteration >= s.total_iter:
            self.logger.info(
                f"nothing to train: already at iteration {self.iteration} of train.total_iter {s.total_iter}"
            )
        self.model.train()
        first = True
        while self.iteration < s.total_iter:
            self.run_iteration()
            if first:  # rates count from the first iteration after (re)start: no start-up time in them
                first = False
                self._window_start, self._window_iters = time.perf_counter(), 0
                self.logger.unpause()
            last = self.iteration == s.total_iter
            if self.iteration % s.print_freq == 0 or last:
                self._report()
            due = self.iteration % s.checkpoint_freq == 0 or last
            if self.validator is not None and s.val_freq and (self.iteration % s.val_freq == 0 or last):
                with self._untimed():
                    self._check_diverged()
                    self._validate_keeping(due)
            if due:
                with self._untimed():
                    self._check_diverged()
                    self.save_checkpoint()
        return self.last_val

    def _validate_keeping(self, checkpoint_due: bool) -> None:
        """Validate; when validation fails at an iteration a checkpoint is due (one process), save
        that checkpoint before the error goes on, so the training done is never lost to it."""
        self.phase = "during validation"
        try:
            self.validate()
        except KeyboardInterrupt:
            raise  # the phase stays for the message
        except Exception:
            if checkpoint_due and self.accelerator.num_processes == 1:
                self.logger.warning(
                    f"validation at iteration {self.iteration} failed; saving the checkpoint due now first"
                )
                self.save_checkpoint()
            raise
        self.phase = "during training"

    def interruption(self) -> str:
        """The line for a run stopped by Ctrl-C: when, and which checkpoint continues it."""
        from irframe.train.checkpoint_folders import latest_checkpoint

        root = self.checkpointer.root
        latest = latest_checkpoint(root)
        then = (
            f"--resume auto continues from {latest.name}" if latest is not None
            else "no checkpoint was saved yet (--resume auto starts over in it)"
        )
        return (
            f"Ctrl-C at iteration {self.iteration} {self.phase}; the complete checkpoints in "
            f"{root} are intact: {then}"
        )

    @contextlib.contextmanager
    def _untimed(self) -> Iterator[None]:
        """Leave the time spent inside (validation, checkpoints) out of the training rate and ETA."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._window_start += time.perf_counter() - start
            self.logger.unpause()

    def run_iteration(self) -> StepOutput:
        """Fetch ``grad_accum`` micro-batches, take one optimizer step, account it."""
        out = self.train_step([next(self.batches) for _ in range(self.settings.grad_accum)])
        self.iteration += 1
        self.micro_step += self.settings.grad_accum
        self.meter.add(out, self.iteration)
        self.logger.step()
        self._window_iters += 1
        return out

    def train_step(self, micro_batches: list[Mapping[str, Any]]) -> StepOutput:
        """One optimizer step (of the step) over ``grad_accum`` micro-batches, moved to the device
        and mixed (``train.mixing_augs``) first."""
        batches = []
        for k, batch in enumerate(micro_batches):
            batch = self._to_device(batch)
            batches.append(self.mixing(batch, self.iteration, k) if self.mixing is not None else batch)
        out = self.step.step(batches, self.iteration)
        if out.skipped:
            self.skipped_steps += 1
        if out.note:
            self.logger.warning(out.note)
        return out

    # -- pieces of a step -------------------------------------------------------------------------
    def _to_device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        device = self.accelerator.device
        return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def _combine(self) -> Any:
        """How the meter's numbers are combined over processes (``None`` on a single process)."""
        if self.accelerator.num_processes == 1:
            return None
        return functools.partial(_reduce_packed, self.accelerator.device)

    def _check_diverged(self, first_bad: int | None = None) -> None:
        """Policy ``stop``: raise if a step had a non-finite loss on any process (all ranks agree)."""
        if first_bad is None:
            first_bad, _ = self.meter.sync(self._combine())
        if first_bad < 0:
            return
        where = f"; the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint else ""
        raise TrainingDiverged(
            f"iteration {first_bad}: the loss is not finite (NaN or inf) on at least one process; training "
            f"stopped before saving anything{where}. Lower train.optim.lr, set train.grad_clip, or set "
            "train.nan_policy: skip"
        )

    # -- collaborators ----------------------------------------------------------------------------
    def validate(self) -> ValResult:
        """Validate the EMA weights (or the model's) and keep the best checkpoint."""
        assert self.validator is not None
        ema = self.ema if self.settings.val_use_ema else None
        net = ema.model if ema is not None else self._raw_model
        # a bar per set, and each set's line as soon as it is scored (not all at the end)
        result = self.validator.run(
            net, self.iteration, progress=self.logger.progress,
            on_dataset=lambda name, partial: self.logger.info(f"val @ {self.iteration}: {partial.line(name)}"),
        )
        self.last_val = result
        self.logger.scalars(
            self.iteration,
            {f"val/{ds}/{k}": v for ds, scores in result.scores.items() for k, v in scores.items()},
        )
        self.logger.images(self.iteration, result.samples)  # a few (input, output, target) to the trackers
        self._track_best(result)
        return result

    def _track_best(self, result: ValResult) -> None:
        assert self.validator is not None
        key = self.settings.best_metric or self.validator.keys[0]
        value = result.mean(key)
        if self.best is None:
            candidate = BestScore(key, value, self.iteration, self.validator.higher_is_better(key))
            better = math.isfinite(value)
        else:
            candidate = BestScore(key, value, self.iteration, self.best.higher_is_better)
            better = self.best.improved_by(value)
        if better:
            self.best = candidate
            self.checkpointer.save_best(self.iteration, self.model, self.ema, vars(candidate))
            self.logger.info(f"new best {key} {value:.4f} ({result.best_text(key)}) at iteration {self.iteration}")

    def save_checkpoint(self) -> Path:
        """Write ``iter_<iteration>`` with everything needed to resume bit-identically."""
        scaler = getattr(self.accelerator, "scaler", None)
        state = {
            "iteration": self.iteration,
            "micro_step": self.micro_step,
            **self.step.state_dict(),  # the optimizers and schedules ("optimizer", "scheduler", ...)
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "best": vars(self.best) if self.best is not None else None,
            "skipped_steps": self.skipped_steps,
            "world_size": self.accelerator.num_processes,
            "scaler": scaler.state_dict() if scaler is not None else None,
        }
        self.phase = f"while saving iter_{self.iteration:06d} (left unsaved)"
        self.last_checkpoint = self.checkpointer.save(
            self.iteration, self.model, self.ema, state, networks=self.step.networks()
        )
        self.phase = "during training"
        self.logger.info(f"checkpoint saved: {self.last_checkpoint}")
        return self.last_checkpoint

    def _report(self) -> None:
        first_bad, loss, parts, lr = self.meter.report(self._combine())
        self._check_diverged(first_bad)
        elapsed = time.perf_counter() - self._window_start
        # training steps only: validation, checkpoints and the first (start-up) iteration are left out
        timed = self._window_iters > 0 and elapsed > 0
        iter_time = elapsed / self._window_iters if timed else None
        speed = f" | {1 / iter_time:.2f} it/s" if iter_time else ""
        left = self.settings.total_iter - self.iteration
        if iter_time and left > 0:  # the log's ETA (a file or a pipe shows no bar)
            speed += f" | eta {datetime.timedelta(seconds=round(left * iter_time))}"
        self._window_start, self._window_iters = time.perf_counter(), 0
        terms = ", ".join(f"{k} {v:.4g}" for k, v in parts.items())
        # a window without the headline loss (an adversarial step updating only its discriminator)
        # shows its parts alone
        shown = f"loss {loss:.4g} ({terms})" if math.isfinite(loss) or not parts else terms
        self.logger.info(
            f"iter {self.iteration}/{self.settings.total_iter} | lr {lr:.3e} | {shown}{speed}"
            + (f" | {self.skipped_steps} skipped" if self.skipped_steps else "")
        )
        scalars = {f"train/{k}": v for k, v in parts.items()}
        if math.isfinite(loss) or not parts:
            self.logger.set_loss(loss)
            scalars["train/loss"] = loss
        if iter_time:
            scalars["train/iter_time"] = iter_time  # seconds per training iteration
        self.logger.scalars(self.iteration, {**scalars, "train/lr": lr})


def _reduce_packed(device: torch.device, packed: torch.Tensor) -> torch.Tensor:
    """Combine a meter's ``[first_bad, sums...]`` over processes: earliest bad iteration, summed sums."""
    import torch.distributed as dist

    packed = packed.to(device=device, dtype=torch.float64)
    # The earliest bad iteration is -max(-x) over the ranks that saw one (the others send -inf).
    first = torch.where(packed[:1] >= 0, -packed[:1], torch.full_like(packed[:1], float("-inf")))
    sums = packed[1:].clone()
    dist.all_reduce(first, op=dist.ReduceOp.MAX)
    dist.all_reduce(sums, op=dist.ReduceOp.SUM)
    first = torch.where(torch.isfinite(first), -first, torch.full_like(first, -1.0))
    return torch.cat([first, sums]).cpu()

