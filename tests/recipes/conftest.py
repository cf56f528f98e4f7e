"""Fixtures of the recipe tests (helpers in ``documents.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.recipes.documents import clean_page, load_tool, stain, write_gray


@pytest.fixture
def tool() -> Any:
    return load_tool()


@pytest.fixture
def documents(tmp_path: Path) -> Path:
    """Kaggle-like data: ``noisy/`` + ``clean/`` pages 1-4 (pages 1 and 3 share one text, as the
    competition's pages do), and ``test/`` pages 7 and 12 (12 is 44x60: not a multiple of 8)."""
    root = tmp_path / "documents"
    texts = {1: 0, 2: 1, 3: 0, 4: 2}
    for page_id, text in texts.items():
        clean = clean_page(text)
        write_gray(root / "clean" / f"{page_id}.png", clean)
        write_gray(root / "noisy" / f"{page_id}.png", stain(clean, page_id))
    write_gray(root / "test" / "7.png", stain(clean_page(5), 7))
    write_gray(root / "test" / "12.png", stain(clean_page(6, 44, 60), 12))
    return root
