"""Training output: a log file, the experiment trackers and a tqdm progress bar (main process only).

Every process may call every method; only the main process writes anything, so the trainer does
not sprinkle ``if is_main`` around. The bar is drawn on a terminal only: when the output goes to a
file or a pipe (a cluster job's log), its carriage-return updates would share lines with the log
lines, so training prints plain log lines there (as BasicSR does), one per entry, each flushed.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from irframe.train.trackers import Trackers, image_key

LOGGER_NAME = "irframe.train"


class TrainLogger:
    """Log lines (console + ``<experiment>/train.log``), tracked scalars and images, the progress bar.

    Args:
        log_file: the text log (appended to, so a resumed run continues it).
        trackers: where scalars and validation images go (:func:`~.trackers.start_trackers`;
            ``None``: nowhere).
        total_iter: iterations of the whole run (the bar's total).
        start_iter: iteration the run starts at (resuming).
        is_main: whether this is the process that writes.
        progress_bar: show the tqdm bar (it/s, loss, ETA) when stderr is a terminal.
    """

    def __init__(
        self,
        log_file: Path | None,
        trackers: Trackers | None,
        total_iter: int,
        start_iter: int,
        is_main: bool,
        progress_bar: bool = True,
    ) -> None:
        self.is_main = is_main
        self._logger = logging.getLogger(LOGGER_NAME)
        self._handlers: list[logging.Handler] = []
        self._trackers = trackers
        self._bar: tqdm | None = None
        self._showwarning: Any = None  # warnings.showwarning while ours is installed
        if not is_main:
            return
        self._logger.setLevel(logging.INFO)
        self._logger.propagate = False
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
        bar = progress_bar and _stderr_is_terminal()
        console: logging.Handler = _TqdmHandler() if bar else _PlainHandler()
        console.setFormatter(logging.Formatter("%(message)s"))
        self._add(console)
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            file_handler = logging.FileHandler(log_file, encoding="utf-8")
            file_handler.setFormatter(fmt)
            self._add(file_handler)
        if bar:
            self._bar = tqdm(
                total=total_iter, initial=start_iter, desc="train", unit="it", dynamic_ncols=True,
                file=sys.stderr, smoothing=0.1,
            )
            # python warnings (e.g. a saved image's value range) above the bar
            self._showwarning, warnings.showwarning = warnings.showwarning, _show_warning

    def _add(self, handler: logging.Handler) -> None:
        self._logger.addHandler(handler)
        self._handlers.append(handler)

    def info(self, message: str) -> None:
        """A log line (console and file)."""
        if self.is_main:
            self._logger.info(message)

    def warning(self, message: str) -> None:
        """A warning line (console and file)."""
        if self.is_main:
            self._logger.warning(message)

    def step(self) -> None:
        """Advance the bar by one iteration (it/s and ETA follow)."""
        if self._bar is not None:
            self._bar.update(1)

    def unpause(self) -> None:
        """Leave the time since the bar's last update out of its rate and ETA (after validation,
        checkpoints, or the start-up before the first iteration)."""
        if self._bar is not None:
            self._bar.unpause()

    def progress(self, total: int, desc: str) -> Any:
        """A transient bar below the training bar (validation): its own rate and ETA, removed when
        closed; a disabled bar on other processes or without ``progress_bar``."""
        return tqdm(
            total=total, desc=desc, unit="img", dynamic_ncols=True, file=sys.stderr, leave=False,
            disable=self._bar is None,
        )

    def set_loss(self, loss: float) -> None:
        """Show the latest reported loss on the bar (updated at every report, not every step,
        so that a step never waits for the device)."""
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    def scalars(self, iteration: int, values: Mapping[str, float]) -> None:
        """Send scalars (``train/loss``, ``val/<set>/PSNR``, ...) to the trackers."""
        if self._trackers is not None and self.is_main:
            self._trackers.log(values, iteration)

    def images(self, iteration: int, samples: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]]) -> None:
        """Send validation images to the trackers: ``{set: [(image name, {role: HWC uint8}), ...]}``
        (roles ``input``, ``output``, ``target``), as ``val_images/<set>/<image>/<role>``."""
        if self._trackers is None or not self.is_main:
            return
        flat = {
            image_key(dataset, name, role): image
            for dataset, items in samples.items()
            for name, roles in items
            for role, image in roles.items()
        }
        self._trackers.images(iteration, flat)

    def close(self) -> None:
        """Flush and close everything this logger opened."""
        if self._showwarning is not None:
            if warnings.showwarning is _show_warning:
                warnings.showwarning = self._showwarning
            self._showwarning = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        # the trackers are closed by accelerator.end_training() at the end of the run
        for handler in self._handlers:
            self._logger.removeHandler(handler)
            handler.close()
        self._handlers.clear()


def _stderr_is_terminal() -> bool:
    """Whether the bar is drawn on a terminal (where a plain write would break it)."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` while the training bar is shown: the warning goes through ``tqdm.write``."""
    text = warnings.formatwarning(message, category, filename, lineno, line).rstrip("\n")
    tqdm.write(text, file=file or sys.stderr)


class _TqdmHandler(logging.StreamHandler):
    """Writes through ``tqdm.write`` so log lines do not break the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stdout)
        except Exception:
            self.handleError(record)


class _PlainHandler(logging.Handler):
    """Plain log lines on the current ``sys.stdout``, flushed one by one (a file or a pipe is
    block-buffered: a cluster job's log would otherwise lag behind the run)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stdout
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)
