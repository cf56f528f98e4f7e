"""``irframe new-plugin NAME``: write a pip-installable plugin skeleton.

The skeleton is the smallest plugin that follows every rule of ``docs/plugins.md``::

    irframe-NAME/
      pyproject.toml              distribution irframe-NAME, entry point NAME = irframe_NAME:register
      README.md
      irframe_NAME/__init__.py    register() and IRFRAME_PLUGIN_API
      irframe_NAME/arch.py        a small residual network with its ModelSpec
      irframe_NAME/detect.py      its checkpoint detector (uses the filename/metadata hints)
      options/train_NAME.yml      an option file training it (denoising, generated noise)
      tests/test_NAME.py          tests that pass as generated

``pip install -e irframe-NAME`` and ``irframe list arch`` shows the arch at once; the generated
tests then run with ``pytest irframe-NAME/tests``.
"""

from __future__ import annotations

import keyword
import os
import shutil
from pathlib import Path

from irframe.errors import OptionsError
from irframe.registry import PLUGIN_API_VERSION

__all__ = ["arch_name_for", "new_plugin", "plugin_files"]


def arch_name_for(name: str) -> str:
    """The default arch class name of plugin ``name``: ``my_net`` -> ``MyNet``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or name


def _check_identifier(value: str, what: str) -> None:
    if not value.isidentifier() or keyword.iskeyword(value) or not value.isascii():
        raise OptionsError(
            f"{what} {value!r} is not a valid Python identifier (letters, digits and underscores, not "
            "starting with a digit, not a keyword), e.g. 'swinir' or 'my_net'"
        )


def plugin_files(name: str, arch: str | None = None) -> dict[str, str]:
    """The skeleton's files, ``{relative path: text}``, for plugin ``name`` and arch class ``arch``.

    Raises:
        OptionsError: ``name`` or ``arch`` is not a Python identifier.
    """
    _check_identifier(name, "plugin name")
    arch = arch or arch_name_for(name)
    _check_identifier(arch, "arch name")
    fields = {
        "{{name}}": name,
        "{{dist}}": f"irframe-{name}",
        "{{package}}": f"irframe_{name}",
        "{{Arch}}": arch,
        "{{api}}": str(PLUGIN_API_VERSION),
    }

    def fill(text: str) -> str:
        for key, value in fields.items():
            text = text.replace(key, value)
        return text.lstrip("\n")

    pkg = fields["{{package}}"]
    return {
        "pyproject.toml": fill(_PYPROJECT),
        "README.md": fill(_README),
        f"{pkg}/__init__.py": fill(_INIT),
        f"{pkg}/arch.py": fill(_ARCH),
        f"{pkg}/detect.py": fill(_DETECT),
        f"options/train_{name}.yml": fill(_OPTIONS),
        f"tests/test_{name}.py": fill(_TEST),
    }


def new_plugin(name: str, directory: str | os.PathLike[str] = ".", arch: str | None = None) -> Path:
    """Write the skeleton of plugin ``name`` to ``directory/irframe-NAME`` and return that folder.

    Raises:
        OptionsError: an invalid ``name``/``arch``, the folder already exists (never overwritten),
            ``directory`` is a file (or lies under one), or the files cannot be written (the half-made
            folder is removed: a rerun does not find it in the way).
    """
    files = plugin_files(name, arch)
    base = Path(directory)
    root = base / f"irframe-{name}"
    if base.exists() and not base.is_dir():
        raise OptionsError(f"{base}: --dir is a file, not a folder (nothing was written)")
    if root.exists():
        raise OptionsError(f"{root} already exists; choose another name or --dir (nothing was written)")
    try:
        base.mkdir(parents=True, exist_ok=True)
        root.mkdir()  # exclusively: the folder is this call's own, removed again if writing fails
    except (FileExistsError, NotADirectoryError):
        if root.exists():  # made by someone else in the meantime
            raise OptionsError(f"{root} already exists; choose another name or --dir (nothing was written)") from None
        raise OptionsError(f"{base}: --dir lies under a file, not a folder (nothing was written)") from None
    except OSError as exc:
        raise OptionsError(f"{root}: cannot create the plugin folder ({exc.strerror or exc})") from None
    try:
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except BaseException as exc:
        shutil.rmtree(root, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OptionsError(f"{root}: cannot write the plugin skeleton ({exc.strerror or exc})") from None
        raise
    return root


_PYPROJECT = '''
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{{dist}}"
version = "0.1.0"
description = "{{Arch}} for irframe"
requires-python = ">=3.10"
dependencies = ["irframe", "torch"]

# irframe finds the plugin through this entry point; nothing else is needed.
[project.entry-points."irframe.plugins"]
{{name}} = "{{package}}:register"

[tool.setuptools.packages.find]
include = ["{{package}}*"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

_README = '''
# {{dist}}

An [irframe](https://github.com/) plugin providing the arch `{{Arch}}` and its checkpoint detector.

```bash
pip install -e .                 # then: irframe list arch  ->  {{Arch}}  [{{name}}]
python -m pytest -q tests        # the plugin's own tests
python tools/train.py -opt options/train_{{name}}.yml   # from an irframe checkout (edit the dataroots)
```

Replace the small residual network in `{{package}}/arch.py` with your model (keep the official
parameter names so released checkpoints load unchanged), and update `detect.py` and the tests.
The plugin contract (every component kind, errors, ModelSpec, API version) is in irframe's
`docs/plugins.md`.
'''

_INIT = '''
"""irframe plugin {{name}}: importing this package registers nothing; irframe calls :func:`register`."""

from __future__ import annotations

import importlib

# The irframe plugin API this plugin is written against (irframe refuses another major version).
IRFRAME_PLUGIN_API = {{api}}

# Modules whose decorators register this plugin's components.
MODULES: tuple[str, ...] = ("arch", "detect")


def register() -> None:
    """Entry point (group ``irframe.plugins``): import the modules that register components."""
    for module in MODULES:
        importlib.import_module(f"{__name__}.{module}")
'''

_ARCH = '''
"""{{Arch}}: a small residual convolutional network (replace it with the model you port)."""

from __future__ import annotations

import torch
from torch import nn

from irframe.errors import OptionsError
from irframe.nn.spec import ModelSpec
from irframe.registry import ARCHS


class ResBlock(nn.Module):
    """conv-ReLU-conv with a skip connection."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


@ARCHS.register()
class {{Arch}}(nn.Module):
    """Predicts the residual of a degraded image; input and output in [0, 1], any size.

    Args:
        in_channels: image channels (3 RGB, 1 gray); the output has as many.
        width: feature channels.
        num_blocks: residual blocks.
    """

    def __init__(self, in_channels: int = 3, width: int = 32, num_blocks: int = 2) -> None:
        super().__init__()
        if in_channels < 1 or width < 1 or num_blocks < 0:
            raise OptionsError(
                f"{{Arch}}: in_channels and width must be >= 1 and num_blocks >= 0, got "
                f"in_channels={in_channels}, width={width}, num_blocks={num_blocks}"
            )
        # What the engine reads: channels, scale, size multiple, value range, tiling.
        self.spec = ModelSpec(in_channels=in_channels, out_channels=in_channels, scale=1, size_multiple=1,
                              value_range=1.0, tileable=True, tile_overlap=8)
        self.head = nn.Conv2d(in_channels, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width) for _ in range(num_blocks)])
        self.tail = nn.Conv2d(width, in_channels, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # starts as the identity: training begins at the input's quality
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.tail(self.body(self.head(x)))
'''

_DETECT = '''
"""Checkpoint detector of {{Arch}}: its build config from a state dict's names and shapes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from irframe.errors import CheckpointError
from irframe.registry import DETECTORS

_BLOCK = re.compile(r"^body\\.(\\d+)\\.")
_PARTS = ("head.", "body.", "tail.")


@DETECTORS.register("{{Arch}}")
def detect_{{name}}(
    state_dict: Mapping[str, torch.Tensor],
    *,
    filename: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """``{"type": "{{Arch}}", ...}`` for a {{Arch}} state dict, ``None`` for anything else.

    ``filename`` and ``metadata`` are optional hints (the file's name, its safetensors metadata or a
    torch file's other top-level entries) for settings the weights do not show.

    Raises:
        CheckpointError: the keys are {{Arch}}'s but describe no buildable model.
    """
    # Never index a key before checking it is there: return None for other archs' files.
    if "head.weight" not in state_dict or "tail.weight" not in state_dict:
        return None
    if not all(key.startswith(_PARTS) for key in state_dict):
        return None
    width, in_channels = (int(v) for v in state_dict["head.weight"].shape[:2])
    out_channels = int(state_dict["tail.weight"].shape[0])
    if out_channels != in_channels:
        raise CheckpointError(
            f"{{Arch}} checkpoint {filename or ''}: tail gives {out_channels} channels but head reads "
            f"{in_channels}; {{Arch}} restores as many channels as it reads"
        )
    num_blocks = len({int(m.group(1)) for key in state_dict if (m := _BLOCK.match(key))})
    return {"type": "{{Arch}}", "in_channels": in_channels, "width": width, "num_blocks": num_blocks}
'''

_OPTIONS = '''
# Train {{Arch}} to remove Gaussian noise (sigma 25) from clean images generated on the fly.
#   python tools/train.py -opt options/train_{{name}}.yml      (run from an irframe checkout)
# Put clean training/validation images in the two folders below (or override with --set).
name: {{name}}_denoise
seed: 0

model: {type: {{Arch}}, in_channels: 3, width: 32, num_blocks: 2}

datasets:
  train:
    type: OnlineDegradationDataset
    dataroot_gt: datasets/{{name}}/train
    degradation: {type: GaussianNoise, sigma: 25}
    gt_size: 64
    use_flip: true
    use_rot: true
    batch_size: 8
    num_workers: 0
  val:
    type: OnlineDegradationDataset
    dataroot_gt: datasets/{{name}}/val
    degradation: {type: GaussianNoise, sigma: 25}
    seed: 0

train:
  total_iter: 2000
  optim: {type: AdamW, lr: 1.0e-3, weight_decay: 1.0e-4}
  scheduler: {type: CosineAnnealingLR, T_max: 2000, eta_min: 1.0e-6}
  losses:
    - {type: L1Loss}

val:
  freq: 500
  metrics:
    - {type: PSNR, crop_border: 0}

logger:
  print_freq: 100
  checkpoint_freq: 500
'''

# Imports in the order the repository's `ruff check` (isort) wants them when the plugin is generated
# inside it (plugins/NAME): from the repository's root the plugin package is third-party, irframe first-party.
_TEST = '''
"""Tests of the {{name}} plugin: registration, the model contract, its detector, checkpoints."""

from __future__ import annotations

import {{package}}
import pytest
import torch
from {{package}}.detect import detect_{{name}}

import irframe
from irframe.errors import CheckpointError, OptionsError
from irframe.nn.spec import get_spec
from irframe.registry import ARCHS, DETECTORS, PLUGIN_API_VERSION

CONFIG = {"type": "{{Arch}}", "in_channels": 3, "width": 8, "num_blocks": 2}


def test_registered_through_the_entry_point():
    assert ARCHS.entry("{{Arch}}").provider == "{{name}}"
    assert DETECTORS.entry("{{Arch}}").provider == "{{name}}"
    assert {{package}}.IRFRAME_PLUGIN_API == PLUGIN_API_VERSION


def test_forward_keeps_shape_and_spec():
    model = ARCHS.build(CONFIG).eval()
    x = torch.rand(2, 3, 17, 23)  # odd sizes: size_multiple is 1
    with torch.no_grad():
        y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    spec = get_spec(model)
    assert (spec.in_channels, spec.out_channels, spec.scale, spec.value_range) == (3, 3, 1, 1.0)


def test_bad_options_are_named():
    with pytest.raises(OptionsError, match="widht"):
        ARCHS.build({"type": "{{Arch}}", "widht": 8}, path="model")
    with pytest.raises(OptionsError, match="width"):
        ARCHS.build({"type": "{{Arch}}", "width": 0})


def test_checkpoint_is_detected_and_loads(tmp_path):
    model = ARCHS.build(CONFIG).eval()
    torch.nn.init.normal_(model.tail.weight, std=0.01)  # not the identity it starts as
    path = tmp_path / "{{name}}.pth"
    torch.save({"params": model.state_dict()}, path)
    loaded = irframe.load_model(path)
    assert loaded.irframe_config == CONFIG
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_detector_ignores_other_files_and_refuses_inconsistent_ones():
    assert detect_{{name}}({"encoder.weight": torch.zeros(1)}) is None
    state = ARCHS.build(CONFIG).state_dict()
    state["tail.weight"] = torch.zeros(1, 8, 3, 3)
    with pytest.raises(CheckpointError, match="tail gives 1 channels"):
        detect_{{name}}(state, filename="bad.pth")
'''
