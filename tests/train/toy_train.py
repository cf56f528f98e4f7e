"""``tools/train.py`` with the toy components registered (for multi-process test runs)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from toys import register_toys

from irframe.train.cli import main

if __name__ == "__main__":
    register_toys()
    raise SystemExit(main())
