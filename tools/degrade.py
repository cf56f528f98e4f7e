"""Write degraded copies of clean images; see :mod:`irframe.data.cli` (``python tools/degrade.py -h``)."""

from irframe.data.cli import degrade_main

if __name__ == "__main__":
    raise SystemExit(degrade_main())
