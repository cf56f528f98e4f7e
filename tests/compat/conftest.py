"""Fixtures of the BasicSR-dialect tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "basicsr_options"


@pytest.fixture
def data_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """``data_tree(name)``: make every (relative) ``dataroot_*`` folder of fixture ``name`` under a
    temporary folder, and an (empty) file for its ``path.pretrain_network_g`` / ``pretrain_network_d``
    and each dataset's ``meta_info`` list, and work from there,
    so the path checks find them; returns the fixture path."""
    from irframe.options import load_with_bases

    monkeypatch.chdir(tmp_path)

    def make(name: str) -> Path:
        path = FIXTURES / name
        raw = load_with_bases(path)
        for cfg in raw.get("datasets", {}).values():
            for key, value in cfg.items():
                if key.startswith("dataroot") and isinstance(value, str) and value.lower() != "none":
                    (tmp_path / value).mkdir(parents=True, exist_ok=True)
        files = [(raw.get("path") or {}).get(k) for k in ("pretrain_network_g", "pretrain_network_d")]
        files += [cfg.get("meta_info") for cfg in raw.get("datasets", {}).values()]  # Real-ESRGAN's image lists
        for name in files:
            if isinstance(name, str):
                (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / name).touch()
        return path

    return make


def roots_under(data: Any, base: Path) -> None:
    """Point every ``dataroot_*`` of translated dataset mappings at new folders under ``base``."""
    for cfg in data.values():
        for key in [k for k in cfg if k.startswith("dataroot")]:
            folder = base / f"{len(list(base.iterdir()))}_{key}"
            folder.mkdir()
            cfg[key] = str(folder)
