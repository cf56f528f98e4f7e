"""Datasets registered in ``DATASETS`` (imported by the core's builtins on the first registry lookup).

================================  ==============================================================
``PairedImageDataset``            GT/LQ folders or LMDBs matched by file stem (SR-aware crops)
``SingleImageDataset``            LQ-only inputs (no ground truth)
``OnlineDegradationDataset``      GT folder + ``degradation`` pipeline -> LQ on the fly
``AllInOneDataset``               PromptIR/IPT multi-task mixer; samples carry ``"task"``
``DualPixelDataset``              left/right dual-pixel views (``lq`` = 6 channels) + sharp target
``RealESRGANDataset``             GT images + Real-ESRGAN's high-order degradation -> LQ on the fly
                                  (in the workers, or ``degrade_on: device``: batched in the step)
``RealESRGANPairedDataset``       Real-ESRGAN's paired fine-tuning: GT/LQ (meta_info lists) + ``gt_usm``
================================  ==============================================================

Samples: ``{"lq": FloatTensor[C,h,w], "gt": FloatTensor[C,H,W] (absent for LQ-only data),
"lq_path": str, "gt_path": str, "name": str (file stem), "task": str (when set)}``, values in
``[0, 1]``. ``dataset[i]`` also accepts the batch samplers' ``(index, patch_size, seed)`` keys.
Validation and testing read ``DataLoader(EvalSamples(dataset), collate_fn=collate_good)``: every
sample once, a bad one under ``skip_bad`` left out instead of replaced (see :mod:`.base`).
"""

from __future__ import annotations

from irframe.data.datasets.allinone import PROMPTIR_TASKS, AllInOneDataset
from irframe.data.datasets.base import (
    EvalSamples,
    ImageDataset,
    SkippedSample,
    collate_good,
    parse_key,
    sample_or_skip,
    sample_rng,
)
from irframe.data.datasets.dualpixel import DualPixelDataset
from irframe.data.datasets.paired import PairedImageDataset, match_keys
from irframe.data.datasets.realesrgan import RealESRGANDataset, RealESRGANPairedDataset
from irframe.data.datasets.single import OnlineDegradationDataset, SingleImageDataset

__all__ = [
    "PROMPTIR_TASKS",
    "AllInOneDataset",
    "DualPixelDataset",
    "EvalSamples",
    "ImageDataset",
    "OnlineDegradationDataset",
    "PairedImageDataset",
    "RealESRGANDataset",
    "RealESRGANPairedDataset",
    "SingleImageDataset",
    "SkippedSample",
    "collate_good",
    "match_keys",
    "parse_key",
    "sample_or_skip",
    "sample_rng",
]
