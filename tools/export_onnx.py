"""Export a model to ONNX and check it with onnxruntime against torch (``python tools/export_onnx.py -h``).

See :func:`irframe.evaluate.cli.export_main`.
"""

from irframe.evaluate.cli import export_main as main

if __name__ == "__main__":
    raise SystemExit(main())
