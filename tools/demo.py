"""A few-minute CPU demo: synthetic images -> tiny Restormer -> PSNR restored vs degraded.

See :mod:`irframe.train.demo` (``python tools/demo.py -h``).
"""

from pathlib import Path

from irframe.train.demo import main

if __name__ == "__main__":
    raise SystemExit(main(options_file=Path(__file__).resolve().parents[1] / "options" / "demo.yml"))
