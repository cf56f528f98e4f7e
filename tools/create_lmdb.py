"""Pack a folder of images into an LMDB database (BasicSR layout), resumably (``python tools/create_lmdb.py -h``).

    python tools/create_lmdb.py IN_FOLDER OUT.lmdb [--compress-level N] [--verify] [--recursive] [--key-template T]

See :func:`irframe.data.cli.create_lmdb_main` and :mod:`irframe.data.lmdb_pack`.
"""

import sys

from irframe.data.cli import create_lmdb_main as main

if __name__ == "__main__":
    sys.exit(main())
