"""The document-denoising recipe (Kaggle "Denoising Dirty Documents"): split, train, summary.

    python tools/dirty_documents.py split -opt OPTIONS (--data DIR | --noisy DIR --clean DIR) --val-ids ID [ID ...]
    python tools/dirty_documents.py train -opt OPTIONS (--data DIR | --noisy DIR --clean DIR) --val-ids ID [ID ...]
                                          [--set KEY=VALUE ...] [--resume auto|PATH] [--allow-seen-text]

See :mod:`irframe.recipes.dirty_documents` (``python tools/dirty_documents.py -h``).
"""

import sys

from irframe.recipes.dirty_documents import main

if __name__ == "__main__":
    sys.exit(main())
