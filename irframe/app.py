"""``irframe app``: restore your own image in the browser, with a small local web app (Gradio).

Choose a model (the zoo's and any checkpoint named on the command line; the task of a multi-task
model), upload an image, compare before and after with a slider, download the result at full
resolution. Underneath it is ``tools/infer.py``'s path: :func:`irframe.load_model`, ``--tile auto``
(:class:`~irframe.nn.autotile.AutoTiler`, so a large photo is restored tile by tile within the
memory budget), :func:`~irframe.nn.inference.restore`, and the result written as its source was
stored (:func:`~irframe.evaluate.images.save_restored`: a 16-bit image gives a 16-bit PNG, gray stays
gray). Everything but the page itself is usable without Gradio (:class:`ModelCache`,
:func:`restore_upload`), and tested so.

Nothing leaves the machine: the server listens on 127.0.0.1 unless ``--host`` says otherwise, makes
no share link, and Gradio's analytics are off (``GRADIO_ANALYTICS_ENABLED=False``); the page uses the
fonts Gradio ships. Gradio is the optional extra ``irframe[app]``.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
import torch.nn as nn

from irframe.data.io import IMAGE_EXTENSIONS, decode_image, header_size, img2tensor, imwrite, tensor2img
from irframe.errors import DataError, IrframeError, OptionsError
from irframe.evaluate.images import probe_bytes, save_restored
from irframe.evaluate.infer import check_task
from irframe.nn.spec import get_spec, spec_for_task

__all__ = [
    "APP_EXTRA",
    "DEFAULT_MAX_PIXELS",
    "LoadedModel",
    "ModelCache",
    "Restored",
    "RunningApp",
    "build_app",
    "compare_html",
    "default_models",
    "prune_results",
    "restore_upload",
    "serve",
]

APP_EXTRA = 'pip install "irframe[app]"'
DEFAULT_MAX_PIXELS = 40_000_000
"""Largest output (width x height after the model's scale) the app restores; ``--max-pixels``."""
PREVIEW_SIDE = 2048
"""Longest side of the before/after previews on the page (the download is full size)."""
HTML_PREVIEW_SIDE = 1024
"""Longest side of the previews the HTML slider embeds (Gradio without ``ImageSlider``)."""

RESULT_MAX_AGE_S = 86400
"""Results and previews older than this (seconds) are removed while the app runs."""

Progress = Callable[[int, int], object]


# -- models ----------------------------------------------------------------------------------------
@dataclass
class LoadedModel:
    """A model loaded once for the app: the module, its tiler (``--tile auto``) and a lock (one restore at
    a time per model: requests share it)."""

    ref: str
    model: nn.Module
    tiler: Any  # AutoTiler | None
    lock: threading.Lock

    @property
    def tasks(self) -> tuple[str, ...]:
        return get_spec(self.model).tasks

    def describe(self) -> str:
        """One line: arch, scale, channels, parameters (and tasks)."""
        spec = get_spec(self.model)
        arch = str(getattr(self.model, "irframe_config", {}).get("type", type(self.model).__name__))
        params = sum(p.numel() for p in self.model.parameters())
        size = f"{params / 1e6:.2f} M" if params >= 1e6 else f"{params / 1e3:.1f} k"
        what = f"x{spec.scale} super-resolution" if spec.scale > 1 else "restoration (same size)"
        tasks = f"; tasks: {', '.join(spec.tasks)}" if len(spec.tasks) > 1 else ""
        gray = "gray" if spec.in_channels == 1 else "RGB"
        return f"{self.ref}: {arch}, {what}, {gray}, {size} parameters{tasks}"


class ModelCache:
    """:func:`irframe.load_model` once per model reference, keeping the ``capacity`` most recently used.

    Args:
        device: where the models run.
        tile: ``"auto"`` (the default: the largest tile within ``max_memory``), a tile side, or ``None``
            (whole images).
        max_memory: budget of ``tile="auto"`` in bytes (default: the device's free memory).
        capacity: models kept loaded (the least recently used is dropped beyond it).
        log: receives the automatic tile choices.
    """

    def __init__(
        self,
        device: str | torch.device = "cpu",
        *,
        tile: int | Literal["auto"] | None = "auto",
        max_memory: int | None = None,
        capacity: int = 3,
        log: Callable[[str], object] | None = print,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.device = torch.device(device)
        self.tile = tile
        self.max_memory = max_memory
        self.capacity = capacity
        self.log = log
        self.loads = 0  # how many times a model was read from disk (tests check the cache with it)
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, ref: str) -> LoadedModel:
        """The loaded model of ``ref`` (a checkpoint file or folder, or ``zoo:NAME``).

        Raises:
            CheckpointError: the checkpoint cannot be loaded (the message names it).
            OptionsError: a model the app cannot feed (neither gray nor RGB input).
        """
        with self._lock:
            if ref in self._models:
                self._models.move_to_end(ref)
                return self._models[ref]
            from irframe.nn.autoload import load_model
            from irframe.nn.autotile import AutoTiler

            model = load_model(ref, device=self.device)
            self.loads += 1
            channels = get_spec(model).in_channels
            if channels not in (1, 3):
                raise OptionsError(
                    f"{ref}: this model takes {channels}-channel input (e.g. dual-pixel view pairs); the app restores "
                    "gray or RGB images: use tools/infer.py (--input-right for dual-pixel models)"
                )
            tiler = AutoTiler(model, self.max_memory, log=self.log) if self.tile == "auto" else None
            loaded = LoadedModel(ref, model, tiler, threading.Lock())
            self._models[ref] = loaded
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
            return loaded


def default_models(checkpoints: Sequence[str] = (), *, zoo: bool = True) -> list[str]:
    """The app's model list: the given checkpoints, then every zoo model as ``zoo:NAME`` (unless ``zoo``
    is false); duplicates dropped, order kept."""
    from irframe.nn.weights import ZOO_PREFIX, zoo_dir, zoo_names

    refs = [str(c) for c in checkpoints]
    if zoo:
        refs += [f"{ZOO_PREFIX}{name}" for name in zoo_names(zoo_dir())]
    return list(dict.fromkeys(refs))


# -- one upload ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Restored:
    """What :func:`restore_upload` wrote.

    Attributes:
        output: the full-resolution result (PNG, the source's bit depth and channels).
        before: 8-bit preview of the input, resized to the output's preview size.
        after: 8-bit preview of the output (longest side at most :data:`PREVIEW_SIDE`).
        message: one line for the page (sizes, model, time, tiling).
        tiles: model calls the restoration made (1 for a whole image).
        bit_depth: bit depth of ``output``.
    """

    output: Path
    before: Path
    after: Path
    message: str
    tiles: int
    bit_depth: int


def _safe_stem(text: str, default: str = "image") -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return stem[:80] or default


def _model_stem(ref: str) -> str:
    name = ref.split(":", 1)[1] if ref.startswith("zoo:") else Path(ref.rstrip("/")).name
    for suffix in (".safetensors", ".pth", ".pt", ".ckpt", ".bin"):
        name = name.removesuffix(suffix)
    return _safe_stem(name, "model")


def _megapixels(pixels: float) -> str:
    return f"{pixels / 1e6:.1f} MP"


def _tile_count(spec: Any, shape: tuple[int, int], tile: int | None, overlap: int | None) -> int:
    """Model calls of :func:`~irframe.nn.inference.restore` for an ``(h, w)`` input at this tiling."""
    from irframe.nn.inference import tile_starts

    if tile is None:
        return 1
    m = spec.size_multiple
    h, w = (m * math.ceil(s / m) for s in shape)
    if spec.fixed_size is not None:
        h, w = max(h, spec.fixed_size), max(w, spec.fixed_size)
    if overlap is None:
        overlap = spec.tile_overlap if spec.tile_overlap < tile else tile // 2
    return len(tile_starts(h, tile, overlap)) * len(tile_starts(w, tile, overlap))


def _preview(image: np.ndarray, size: tuple[int, int], path: Path) -> Path:
    """``image`` (float HWC in [0, 1]) resized to ``(width, height)`` and written as an 8-bit PNG."""
    h, w = image.shape[:2]
    if (w, h) != size:
        shrink = size[0] < w
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    imwrite(path, np.clip(image, 0.0, 1.0), bit_depth=8)
    return path


def _preview_size(width: int, height: int, side: int = PREVIEW_SIDE) -> tuple[int, int]:
    factor = min(1.0, side / max(width, height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def _check_output_size(name: str, width: int, height: int, scale: int, max_pixels: int) -> None:
    out_pixels = width * height * scale**2
    if out_pixels > max_pixels:
        result = f" (x{scale}: {width * scale} x {height * scale})" if scale > 1 else ""
        raise DataError(
            f"{name}: {width} x {height}{result} is {_megapixels(out_pixels)} of output, above this app's limit of "
            f"{_megapixels(max_pixels)}; crop or shrink it, start the app with a larger --max-pixels, or use "
            "tools/infer.py --tile auto"
        )


def restore_upload(
    loaded: LoadedModel,
    source: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    *,
    task: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Progress | None = None,
    tile: int | Literal["auto"] | None = "auto",
) -> Restored:
    """Restore the uploaded image file ``source`` with ``loaded`` and write the result and the previews
    under ``out_dir`` (a fresh sub-folder per call).

    Args:
        task: the task of a multi-task model (required there, see
            :func:`~irframe.evaluate.infer.check_task`).
        max_pixels: the largest output (after the model's scale) restored; a larger one is refused
            before decoding.
        progress: called with ``(done, total)`` model calls (tiles) as the restoration advances.
        tile: ``"auto"`` (uses ``loaded.tiler``), a tile side, or ``None`` (whole image).

    Raises:
        DataError: no file, not an image, corrupt, or too large (the message names the upload).
        OptionsError: a task the model does not have, or a missing one.
    """
    from irframe.nn.autotile import MemoryBudgetError
    from irframe.nn.inference import restore

    if source is None or not str(source):
        raise DataError("no image uploaded: choose an image file first")
    src = Path(source)
    name = src.name
    try:
        data = src.read_bytes()
    except OSError as exc:
        raise DataError(f"{name}: cannot read the upload ({exc.strerror or exc})") from None
    if not data:
        raise DataError(f"{name}: the file is empty (0 bytes)")
    model = loaded.model
    started = time.perf_counter()
    with loaded.lock:  # one request at a time per model: choosing a task (IPT) changes the shared model
        resolved = check_task(model, task or None)
        spec = spec_for_task(model, resolved)
        size = header_size(data)
        if size is not None:  # refused before decoding
            _check_output_size(name, size[0], size[1], spec.scale, max_pixels)
        fmt = probe_bytes(data, name)  # bit depth and channels of the source, or "not an image"
        image = decode_image(data, name, channels=1 if spec.in_channels == 1 else 3, max_pixels=max_pixels)
        height, width = image.shape[:2]
        _check_output_size(name, width, height, spec.scale, max_pixels)  # a format whose header was not read
        x = img2tensor(image).unsqueeze(0)
        if tile == "auto" and loaded.tiler is not None:
            choice = loaded.tiler(x, task=resolved)
            kwargs: dict[str, Any] = choice.restore_kwargs()
        else:
            kwargs = {"tile": None if tile == "auto" else tile, "tile_overlap": None}
        total = _tile_count(spec, (height, width), kwargs["tile"] or spec.fixed_size, kwargs["tile_overlap"])
        done = 0

        def count(*_: object) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(min(done, total), total)

        if progress is not None:
            progress(0, total)
        handle = model.register_forward_hook(count)
        try:
            y = restore(model, x, task=resolved, **kwargs)
        except MemoryBudgetError as exc:
            raise DataError(f"{name}: {exc}") from None
        except ValueError as exc:
            raise OptionsError(f"{name}: cannot restore: {exc}") from None
        finally:
            handle.remove()
    seconds = time.perf_counter() - started
    folder = Path(tempfile.mkdtemp(prefix="restore_", dir=out_dir))
    output = folder / f"{_safe_stem(src.stem)}_{_model_stem(loaded.ref)}.png"
    bit_depth = 16 if fmt.bit_depth in (16, 32) else 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a float TIFF written as a 16-bit PNG: said below
        save_restored(output, y[0], fmt)
    restored = tensor2img(y[0])
    out_h, out_w = restored.shape[:2]
    preview = _preview_size(out_w, out_h)
    after = _preview(restored, preview, folder / "after.png")
    before = _preview(image, preview, folder / "before.png")
    tiling = "whole image" if total == 1 else f"{total} tiles of {kwargs['tile'] or spec.fixed_size} px"
    depth = f"{bit_depth}-bit" + (" (from a float TIFF)" if fmt.bit_depth == 32 else "")
    task_text = f", task {resolved}" if resolved is not None else ""
    message = (
        f"restored {name}: {width} x {height} -> {out_w} x {out_h} with {loaded.ref}{task_text} in {seconds:.1f} s "
        f"({tiling}); download: {depth} {'gray' if fmt.channels == 1 else 'RGB'} PNG, full resolution"
    )
    return Restored(output, before, after, message, done, bit_depth)


def prune_results(out_dir: str | os.PathLike[str], max_age_s: float = RESULT_MAX_AGE_S) -> None:
    """Remove the per-request folders of :func:`restore_upload` under ``out_dir`` older than ``max_age_s``."""
    limit = time.time() - max_age_s
    for folder in Path(out_dir).glob("restore_*"):
        try:
            if folder.is_dir() and folder.stat().st_mtime < limit:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # removed meanwhile by another request
            continue


# -- the page --------------------------------------------------------------------------------------
def _data_url(path: Path, side: int) -> str:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"{path}: cannot read the preview")
    h, w = image.shape[:2]
    if max(h, w) > side:
        factor = side / max(h, w)
        image = cv2.resize(image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise DataError(f"{path}: cannot encode the preview")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def compare_html(before: Path, after: Path, side: int = HTML_PREVIEW_SIDE) -> str:
    """A before/after slider in plain HTML (for a Gradio without ``ImageSlider``): the output, with the
    input laid over it and clipped at the slider's position."""
    b, a = _data_url(before, side), _data_url(after, side)
    clip = "this.parentElement.querySelector('.irframe-before').style.clipPath='inset(0 '+(100-this.value)+'% 0 0)'"
    return (
        '<div class="irframe-compare" style="position:relative;display:inline-block;max-width:100%">'
        f'<img class="irframe-after" alt="after" src="{a}" style="display:block;max-width:100%;height:auto">'
        f'<img class="irframe-before" alt="before" src="{b}" style="position:absolute;top:0;left:0;width:100%;'
        'height:auto;clip-path:inset(0 50% 0 0)">'
        f'<input type="range" min="0" max="100" value="50" aria-label="before / after" style="width:100%" '
        f'oninput="{html.escape(clip)}">'
        "<div style=\"display:flex;justify-content:space-between\"><span>before</span><span>after</span></div>"
        "</div>"
    )


def _import_gradio() -> Any:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: it reads it at import
    try:
        import gradio as gr
    except ImportError:
        raise OptionsError(f"the web app needs Gradio: {APP_EXTRA}") from None
    return gr


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _error_text(exc: BaseException | str) -> str:
    text = str(exc).replace("`", "'")
    return f"**Could not restore:** {html.escape(text)}"


def build_app(
    cache: ModelCache,
    models: Sequence[str],
    out_dir: str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    slider: Literal["auto", "image_slider", "html"] = "auto",
) -> Any:
    """The Gradio ``Blocks`` of the app (not launched).

    Args:
        cache: loads and keeps the models.
        models: the model references offered (the first is selected).
        out_dir: where results and previews are written (a sub-folder per request).
        max_pixels: see :func:`restore_upload`.
        slider: ``"image_slider"`` (Gradio's ``ImageSlider``), ``"html"`` (:func:`compare_html`) or
            ``"auto"`` (the first when the installed Gradio has it).
    """
    if not models:
        raise OptionsError("no model to offer: name checkpoints (--checkpoint) or put models in the zoo")
    gr = _import_gradio()
    use_slider = slider == "image_slider" or (slider == "auto" and hasattr(gr, "ImageSlider"))
    out = Path(out_dir)

    def on_model(ref: str) -> tuple[Any, str]:
        try:
            loaded = cache.get(ref)
        except IrframeError as exc:
            return gr.update(choices=[], value=None, visible=False), f"**Could not load the model:** {exc}"
        tasks = list(loaded.tasks)
        if len(tasks) > 1:
            return gr.update(choices=tasks, value=tasks[0], visible=True), loaded.describe()
        return gr.update(choices=[], value=None, visible=False), loaded.describe()

    # Gradio injects the page's progress bar through this default (its documented way)
    def on_run(
        upload: str | None, ref: str, task: str | None, progress: Any = gr.Progress()  # noqa: B008
    ) -> tuple[Any, ...]:
        def report(done: int, total: int) -> None:
            progress((done, total), desc=f"restoring: tile {done} of {total}" if total > 1 else "restoring")

        try:
            progress(0, desc="loading the model")
            loaded = cache.get(ref)
            prune_results(out)
            result = restore_upload(loaded, upload, out, task=task, max_pixels=max_pixels, progress=report)
        except IrframeError as exc:
            return None, None, _error_text(exc)
        except torch.cuda.OutOfMemoryError as exc:  # the estimate was wrong: say so in the page
            return None, None, _error_text(f"out of memory: {exc}; start the app with a smaller --max-memory")
        compare: Any = (str(result.before), str(result.after)) if use_slider else compare_html(result.before,
                                                                                              result.after)
        return compare, str(result.output), result.message

    blocks_kwargs: dict[str, Any] = {"title": "irframe: restore an image", "analytics_enabled": False}
    if _accepts(gr.Blocks.__init__, "delete_cache"):  # Gradio's copies of uploads and results: hourly, a day old
        blocks_kwargs["delete_cache"] = (3600, RESULT_MAX_AGE_S)
    with gr.Blocks(**blocks_kwargs) as demo:
        gr.Markdown(
            "## irframe: restore your own image\n"
            "Choose a model, upload an image, press **Restore**: compare before and after with the slider, then "
            "download the result at full resolution (PNG; a 16-bit image stays 16-bit). Everything runs on this "
            "machine."
        )
        with gr.Row():
            model_box = gr.Dropdown(choices=list(models), value=models[0], label="Model", elem_id="irframe-model")
            task_box = gr.Dropdown(choices=[], value=None, label="Task", visible=False, elem_id="irframe-task")
        model_info = gr.Markdown(elem_id="irframe-model-info")
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(
                    label="Your image", file_types=list(IMAGE_EXTENSIONS), type="filepath", elem_id="irframe-upload"
                )
                run = gr.Button("Restore", variant="primary", elem_id="irframe-run")
                status = gr.Markdown(elem_id="irframe-status")
                download = gr.File(label="Restored image (full resolution)", interactive=False,
                                   elem_id="irframe-download")
            with gr.Column(scale=2):
                if use_slider:
                    compare = gr.ImageSlider(label="Before / after", type="filepath", interactive=False,
                                             elem_id="irframe-compare", **(
                                                 {"format": "png"} if _accepts(gr.ImageSlider, "format") else {}))
                else:
                    compare = gr.HTML(label="Before / after", elem_id="irframe-compare")
        model_box.change(on_model, model_box, [task_box, model_info])
        demo.load(on_model, model_box, [task_box, model_info])
        run.click(on_run, [upload, model_box, task_box], [compare, download, status], concurrency_limit=1)
    return demo


@dataclass
class RunningApp:
    """A started app: its page at ``url``; :meth:`close` stops the server and removes ``out_dir``."""

    demo: Any
    url: str
    out_dir: Path
    cache: ModelCache

    def close(self) -> None:
        self.demo.close()
        shutil.rmtree(self.out_dir, ignore_errors=True)


def serve(
    models: Sequence[str],
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str | None = None,
    tile: int | Literal["auto"] | None = "auto",
    max_memory: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_file_size: str | int | None = "200mb",
    slider: Literal["auto", "image_slider", "html"] = "auto",
    block: bool = True,
    log: Callable[[str], object] = print,
) -> RunningApp:
    """Start the app on ``host:port`` (no share link, no analytics).

    With ``block`` it serves until interrupted (Ctrl-C), then stops and removes its result folder;
    otherwise it returns at once (tests, notebooks) and the caller closes the :class:`RunningApp`.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    out_dir = Path(tempfile.mkdtemp(prefix="irframe_app_"))
    cache = ModelCache(device, tile=tile, max_memory=max_memory, log=log)
    try:
        demo = build_app(cache, models, out_dir, max_pixels=max_pixels, slider=slider)
        demo.queue(default_concurrency_limit=1)
        launch: dict[str, Any] = {
            "server_name": host, "server_port": port, "share": False, "inbrowser": False, "show_error": True,
            "prevent_thread_lock": True, "quiet": True, "allowed_paths": [str(out_dir)],
            "max_file_size": max_file_size,
        }
        for key, value in (("ssr_mode", False), ("enable_monitoring", False), ("mcp_server", False), ("pwa", False)):
            if _accepts(demo.launch, key):
                launch[key] = value
        demo.launch(**launch)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    app = RunningApp(demo, f"http://{host}:{port}/", out_dir, cache)
    log(f"irframe app: {app.url} ({len(models)} models on {device}, tile {tile}; Ctrl-C stops it)")
    if not block:
        return app
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        log("irframe app: stopped")
    finally:
        app.close()
    return app
