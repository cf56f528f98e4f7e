"""Real-ESRGAN's two stages on a CPU: PSNR-first, then GAN fine-tuned; scored on held-out photos.

    python tools/realesrgan_demo.py [--train DIR] [--heldout DIR] [--iters N] [--out DIR]

See :mod:`irframe.recipes.realesrgan_demo` (``python tools/realesrgan_demo.py -h``).
"""

import sys

from irframe.recipes.realesrgan_demo import main

if __name__ == "__main__":
    sys.exit(main())
