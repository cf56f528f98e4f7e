"""Image reading and writing on OpenCV, in the engine's convention (float32, HWC, RGB, [0,1]).

Conventions (the whole data layer follows them):

* Arrays are ``np.float32``, ``H x W x C`` (``C`` is 1 for gray, 3 for RGB), values in ``[0, 1]``.
  8-bit files are divided by 255, 16-bit files by 65535; float files (32-bit TIFF) are kept as stored.
* Colour order is RGB (OpenCV decodes BGR; we convert once, here).
* Alpha is composited **over white** (``rgb * a + (1 - a)``) instead of being dropped: dropping it
  would expose whatever colour an encoder left under transparent pixels (often black or noise), while
  white is what viewers show for a transparent background. Both GT and LQ go through the same rule.
* Gray <-> colour: ``channels=3`` replicates a gray image; ``channels=1`` converts colour to luma with
  BT.601 weights (0.299 R + 0.587 G + 0.114 B, OpenCV's ``RGB2GRAY``), *not* the studio-range Y
  channel that metrics use.
* EXIF orientation is applied on read: a JPEG, PNG (``eXIf``) or WebP whose EXIF ``Orientation`` tag
  says the camera was turned (a phone photo with ``Orientation=6``) is rotated/flipped upright, as
  viewers show it and as OpenCV's ``imread`` does by default (``IMREAD_UNCHANGED``, which we need for
  16-bit and alpha, skips it; TIFF decoders apply it themselves). So ``tools/infer.py`` writes the
  restored image the way its input is seen, and the output carries no orientation tag.
* Float files (32-bit TIFF) must hold finite values in about ``[0, 1]``: NaN/inf, or values far outside
  (see :func:`wrong_value_range`, e.g. a ``[0, 255]`` or 1e30 file) are a :class:`DataError` naming the
  file, not a silent NaN loss later.
* Writing is lossless (PNG, TIFF, BMP, PPM/PGM): floats are quantised by rounding (not truncation) and
  clipped to the format's range; a warning says when more than a tiny fraction of values were outside
  ``[0, 1]`` (that usually means an un-clamped model output or a wrong value range). TIFF can also be
  written as 32-bit float (``bit_depth=32``: values kept as they are, no quantisation).

Every failure raises :class:`~irframe.errors.DataError` naming the file (or record) at fault.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

import cv2
import numpy as np

from irframe.errors import DataError

if TYPE_CHECKING:  # torch is imported where tensors are made, so tools that only pack data start fast
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
LOSSLESS_EXTENSIONS = {
    ".png": (8, 16),
    ".tif": (8, 16, 32),  # 32: float32, values kept as they are
    ".tiff": (8, 16, 32),
    ".bmp": (8,),
    ".ppm": (8, 16),
    ".pgm": (8, 16),
    ".pnm": (8, 16),
}

# When quantising, values outside [0, 1] are clipped. Restored images legitimately overshoot: a
# trained document denoiser (Restormer, L1) puts 30-75% of a white page just above 1 and up to ~1% of
# its text below -0.25 (never beyond -0.4); bicubic overshoots at sharp edges. A wrong value range
# differs in kind: a [-1, 1] output puts every dark pixel near -1 (3-10% of a text page lies beyond
# -0.5), a [0, 255] one nearly every value beyond 1.5. Hence one alarm, used wherever float images
# are quantised: more than RANGE_ALARM_FRACTION of the values farther than RANGE_ALARM_DISTANCE
# outside [0, 1], or any value farther than RANGE_ALARM_MAX_DISTANCE (a diverged model).
RANGE_ALARM_DISTANCE = 0.5
RANGE_ALARM_FRACTION = 1e-3
RANGE_ALARM_MAX_DISTANCE = 1.0

# Pixel budget: a tiny file can claim a huge image (a 1 MB PNG of 30000 x 30000 decodes to 3.4 GB,
# 10 GB more once converted to float RGB) and OpenCV's own limit (2^30 pixels) lets it through. The
# header is read first and an image above the budget is refused with the file named. Default:
# 16384 x 16384 pixels (float RGB: 3 GiB); override per call (``max_pixels=``) or for a whole run
# with the environment variable ``IRFRAME_MAX_IMAGE_PIXELS``.
MAX_IMAGE_PIXELS = 16384 * 16384
MAX_PIXELS_ENV = "IRFRAME_MAX_IMAGE_PIXELS"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (all but DHT C4, JPG C8, DAC CC) carry the height and width.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}

Channels = Literal[1, 3] | None


def imread(path: str | os.PathLike[str], channels: Channels = 3, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as float32 ``HWC`` RGB in ``[0, 1]``.

    Args:
        path: image file (PNG 8/16-bit, JPEG, BMP, TIFF, WebP, PNM).
        channels: 3 (RGB; gray is replicated), 1 (gray; colour becomes BT.601 luma) or ``None``
            (as stored: 1 for gray, 3 for colour; alpha is always composited over white).
        max_pixels: pixel budget (default :data:`MAX_IMAGE_PIXELS` or ``$IRFRAME_MAX_IMAGE_PIXELS``).

    Raises:
        DataError: the file is missing, empty, truncated, not an image, of an unsupported type, or
            its header claims more pixels than the budget (refused before decoding).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not an image file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read image file ({exc.strerror or exc})") from None
    return decode_image(data, str(path), channels, max_pixels=max_pixels)


def decode_image(
    data: bytes | memoryview, source: str, channels: Channels = 3, *, max_pixels: int | None = None
) -> np.ndarray:
    """Decode encoded image bytes (a file's content or an LMDB record) like :func:`imread`.

    Args:
        data: the encoded bytes.
        source: what the bytes are (a path, ``db:key``), used in error messages.
        channels: see :func:`imread`.
        max_pixels: pixel budget (see :func:`pixel_budget`); a larger image is refused unread.
    """
    if channels not in (1, 3, None):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    if len(data) == 0:
        raise DataError(f"{source}: empty image data (0 bytes)")
    check_pixel_budget(data, source, max_pixels)
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf[:3].tobytes() == b"\xff\xd8\xff" and buf.tobytes().rfind(b"\xff\xd9") < 3:
        # Some decoders fill a truncated JPEG with gray instead of failing; every JPEG has an EOI.
        raise DataError(f"{source}: truncated JPEG (no end-of-image marker)")
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. a header claiming more pixels than OpenCV's safety limit
        reason = getattr(exc, "err", None) or str(exc).strip().splitlines()[-1]
        raise DataError(f"{source}: cannot decode image ({len(data)} bytes): OpenCV refused it ({reason})") from None
    if img is None:
        raise DataError(f"{source}: cannot decode image ({len(data)} bytes): truncated, corrupt or not an image")
    img = apply_orientation(img, exif_orientation(data))
    return _to_float_rgb(img, source, channels)


# EXIF Orientation (tag 274) -> how to turn the stored raster upright (what viewers and OpenCV's
# default imread do): 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
# 7 transverse, 8 rotate 90 counter-clockwise.
_EXIF_ORIENTATION_TAG = 0x0112


def exif_orientation(data: bytes | memoryview | np.ndarray) -> int:
    """The EXIF ``Orientation`` (1-8) of an encoded JPEG, PNG (``eXIf`` chunk) or WebP image; 1 (as
    stored) when there is none or it cannot be read. TIFF is not looked at: OpenCV's TIFF decoder
    applies its orientation itself."""
    head = bytes(data[:12])
    whole = data if isinstance(data, bytes) else bytes(data)
    try:
        if head[:2] == b"\xff\xd8":
            tiff = _jpeg_exif(whole)
        elif head[:8] == _PNG_SIGNATURE:
            tiff = _png_exif(whole)
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            tiff = _webp_exif(whole)
        else:
            return 1
        return _tiff_orientation(tiff) if tiff else 1
    except (struct.error, IndexError, ValueError):  # a damaged EXIF block: the raster as stored
        return 1


def _jpeg_exif(data: bytes) -> bytes | None:
    """The TIFF block of a JPEG's ``APP1 Exif`` segment (before the image data), or ``None``."""
    i, n = 2, len(data)
    while i + 4 <= n and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no metadata after this
            return None
        if marker in (0x01, *range(0xD0, 0xD8)):
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker == 0xE1 and data[i + 4 : i + 10] == b"Exif\0\0":
            return data[i + 10 : i + 2 + length]
        i += 2 + length
    return None


def _png_exif(data: bytes) -> bytes | None:
    """The ``eXIf`` chunk of a PNG (before the first ``IDAT``, where viewers look for it), or ``None``."""
    i, n = 8, len(data)
    while i + 8 <= n:
        length, kind = struct.unpack(">I4s", data[i : i + 8])
        if kind == b"eXIf":
            return data[i + 8 : i + 8 + length]
        if kind in (b"IDAT", b"IEND"):
            return None
        i += 12 + length
    return None


def _webp_exif(data: bytes) -> bytes | None:
    """The ``EXIF`` chunk of a WebP (RIFF) file, or ``None``."""
    i, n = 12, len(data)
    while i + 8 <= n:
        kind, length = struct.unpack("<4sI", data[i : i + 8])
        if kind == b"EXIF":
            block = data[i + 8 : i + 8 + length]
            return block[6:] if block[:6] == b"Exif\0\0" else block
        i += 8 + length + (length & 1)
    return None


def _tiff_orientation(tiff: bytes) -> int:
    """The Orientation entry of the first IFD of an EXIF (TIFF-structured) block, or 1."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or struct.unpack(order + "H", tiff[2:4])[0] != 42:
        return 1
    ifd = struct.unpack(order + "I", tiff[4:8])[0]
    count = struct.unpack(order + "H", tiff[ifd : ifd + 2])[0]
    for k in range(count):
        entry = ifd + 2 + 12 * k
        tag, kind = struct.unpack(order + "HH", tiff[entry : entry + 4])
        if tag == _EXIF_ORIENTATION_TAG and kind == 3:  # SHORT
            value = int(struct.unpack(order + "H", tiff[entry + 8 : entry + 10])[0])
            return value if 1 <= value <= 8 else 1
    return 1


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a decoded ``HW`` / ``HWC`` raster upright for an EXIF ``orientation`` (1-8; 1 is a no-op)."""
    if orientation == 2:
        return img[:, ::-1]
    if orientation == 3:
        return img[::-1, ::-1]
    if orientation == 4:
        return img[::-1]
    if orientation == 5:
        return np.swapaxes(img, 0, 1)
    if orientation == 6:
        return np.rot90(img, -1)
    if orientation == 7:
        return np.swapaxes(img, 0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(img, 1)
    return img


def pixel_budget(max_pixels: int | None = None) -> int:
    """The pixel budget in force: ``max_pixels`` if given, else ``$IRFRAME_MAX_IMAGE_PIXELS``, else
    :data:`MAX_IMAGE_PIXELS`."""
    if max_pixels is not None:
        return int(max_pixels)
    text = os.environ.get(MAX_PIXELS_ENV)
    if text is None or not text.strip():
        return MAX_IMAGE_PIXELS
    try:
        value = int(text)
    except ValueError:
        raise DataError(f"environment variable {MAX_PIXELS_ENV}={text!r} is not a whole number of pixels") from None
    if value <= 0:
        raise DataError(f"environment variable {MAX_PIXELS_ENV}={text!r} must be a positive number of pixels")
    return value


def header_size(data: bytes | memoryview | np.ndarray) -> tuple[int, int] | None:
    """``(width, height)`` read from an encoded image's header without decoding it, or ``None``
    when the format's header is not understood (PNG and JPEG are parsed here; other formats through
    Pillow's lazy ``open``, which reads the header only)."""
    head = bytes(data[:32])
    if head[:8] == _PNG_SIGNATURE:
        if len(head) < 24 or head[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", head[16:24])
        return width, height
    whole = data if isinstance(data, bytes) else bytes(data)  # numpy/memoryview buffers: copied once
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(whole)
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow comes with torchvision
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(whole)) as im:
                return im.size
    except Image.DecompressionBombError:  # above Pillow's own hard limit (2 x 89.5 M pixels)
        return (2 * (Image.MAX_IMAGE_PIXELS or 0) + 1, 1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a JPEG's start-of-frame segment, or ``None`` if there is none."""
    i, n = 2, len(data)
    while i + 9 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def check_pixel_budget(data: bytes | memoryview | np.ndarray, source: str, max_pixels: int | None = None) -> None:
    """Refuse encoded image ``data`` whose header claims more pixels than the budget.

    Raises:
        DataError: naming ``source``, the claimed size and the budget (and how to raise it).
    """
    size = header_size(data)
    budget = pixel_budget(max_pixels)
    if size is not None and size[0] * size[1] > budget:
        width, height = size
        raise DataError(
            f"{source}: image header claims {width} x {height} = {width * height} pixels, above the budget of "
            f"{budget} pixels; refused before decoding (set {MAX_PIXELS_ENV} to allow larger images)"
        )


def _to_float_rgb(img: np.ndarray, source: str, channels: Channels) -> np.ndarray:
    """OpenCV's decoded array (HW / HWC BGR[A], uint8/uint16/float) -> float32 HWC RGB [0,1]."""
    if img.dtype == np.uint8:
        out = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        out = img.astype(np.float32) / 65535.0
    elif img.dtype in (np.float32, np.float64):
        out = img.astype(np.float32)
        _check_float_values(out, source)
    else:
        raise DataError(f"{source}: unsupported pixel type {img.dtype} (expected 8/16-bit integer or float)")
    if out.ndim == 2:
        out = out[:, :, None]
    if out.ndim != 3 or out.shape[2] not in (1, 2, 3, 4):
        raise DataError(f"{source}: unsupported image layout {img.shape}")
    c = out.shape[2]
    if c == 2:  # gray + alpha
        gray, alpha = out[:, :, :1], out[:, :, 1:]
        out = gray * alpha + (1.0 - alpha)
    elif c == 3:
        out = out[:, :, ::-1]  # BGR -> RGB
    elif c == 4:
        bgr, alpha = out[:, :, :3], out[:, :, 3:]
        out = (bgr * alpha + (1.0 - alpha))[:, :, ::-1]
    out = convert_channels(out, channels)
    return np.ascontiguousarray(out, dtype=np.float32)


def _check_float_values(img: np.ndarray, source: str) -> None:
    """A float file (kept as stored) must hold finite values in about ``[0, 1]``: NaN/inf, or a
    wrong value range (:func:`wrong_value_range`: ``[0, 255]``, 1e30...) would surface much later as
    a NaN loss or a black output with no file named."""
    finite = np.isfinite(img)
    if not finite.all():
        bad = int(img.size - np.count_nonzero(finite))
        raise DataError(f"{source}: float image holds {bad} NaN or infinite value(s) of {img.size}")
    if wrong_value_range(img):
        raise DataError(
            f"{source}: float image values span [{float(img.min()):.4g}, {float(img.max()):.4g}], "
            f"{far_out_share(img):.2%} of them more than {RANGE_ALARM_DISTANCE} outside [0, 1]; float files are read "
            "as stored and the engine's images are [0, 1]: rescale the file (or save it as 8/16-bit)"
        )


def convert_channels(img: np.ndarray, channels: Channels) -> np.ndarray:
    """Convert an ``HWC`` RGB/gray float image to ``channels`` (3: replicate gray, 1: BT.601 luma)."""
    c = img.shape[2]
    if channels is None or channels == c:
        return img
    if channels == 3 and c == 1:
        return np.repeat(img, 3, axis=2)
    if channels == 1 and c == 3:
        luma = img[:, :, 0] * 0.299 + img[:, :, 1] * 0.587 + img[:, :, 2] * 0.114
        return luma[:, :, None].astype(img.dtype, copy=False)
    raise ValueError(f"cannot convert a {c}-channel image to {channels} channels")


def far_out_share(values: np.ndarray) -> float:
    """The share of ``values`` farther than :data:`RANGE_ALARM_DISTANCE` outside ``[0, 1]``."""
    v = np.asarray(values)
    far = np.count_nonzero((v < -RANGE_ALARM_DISTANCE) | (v > 1.0 + RANGE_ALARM_DISTANCE))
    return far / v.size if v.size else 0.0


def wrong_value_range(values: np.ndarray) -> bool:
    """Whether float image ``values`` look like a wrong value range (or a diverged model) rather
    than overshoot: too many far outside ``[0, 1]``, or any very far (see the module constants)."""
    v = np.asarray(values)
    if not v.size:
        return False
    too_far = float(v.min()) < -RANGE_ALARM_MAX_DISTANCE or float(v.max()) > 1.0 + RANGE_ALARM_MAX_DISTANCE
    return too_far or far_out_share(v) > RANGE_ALARM_FRACTION


def quantize(img: np.ndarray, bit_depth: Literal[8, 16] = 8, *, source: str = "image") -> np.ndarray:
    """Round a ``[0, 1]`` float image to ``uint8``/``uint16`` (round to nearest, then clip).

    Out-of-range values are clipped (models overshoot a little, see the module constants); a
    warning says so when :func:`wrong_value_range` finds the values too far outside ``[0, 1]``.
    NaN/inf raise :class:`DataError`.
    """
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    arr = np.asarray(img)
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"{source}: expected a float image in [0, 1], got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise DataError(
            f"{source}: image contains NaN or infinite values ({int((~np.isfinite(arr)).sum())} of {arr.size})"
        )
    peak = 255.0 if bit_depth == 8 else 65535.0
    if wrong_value_range(arr):
        warnings.warn(
            f"{source}: values span [{float(arr.min()):.4g}, {float(arr.max()):.4g}], "
            f"{far_out_share(arr):.2%} of them more than {RANGE_ALARM_DISTANCE} outside [0, 1]; they are clipped "
            "when quantising, which changes the image. Is the value range right? The engine's images are "
            "[0, 1]: an arch computing in another range ([-1, 1], [0, 255]) converts back inside its "
            "forward (an untrained or diverged model can also do this)",
            RuntimeWarning,
            stacklevel=3,
        )
    out = np.clip(np.rint(arr.astype(np.float64) * peak), 0, peak)
    return out.astype(np.uint8 if bit_depth == 8 else np.uint16)


def imwrite(
    path: str | os.PathLike[str], img: np.ndarray, bit_depth: Literal[8, 16, 32] = 8, *, compress_level: int = 3
) -> None:
    """Write a float ``[0, 1]`` image (``HWC`` RGB, ``HW1`` or ``HW`` gray) losslessly.

    The format follows the extension (PNG by default for the project; TIFF, BMP, PNM also
    lossless); lossy formats (JPEG, WebP) are refused. The file is written under a temporary name and
    renamed, so a reader never sees half a file. Parent folders are created.

    Args:
        path: destination file.
        img: float image in ``[0, 1]``; values outside are clipped (see :func:`quantize`).
        bit_depth: 8 (default), 16 (PNG/TIFF/PNM only) or 32 (TIFF only: float32, values kept as
            they are, not clipped; NaN/inf refused).
        compress_level: PNG zlib level 0-9 (does not change the pixels).
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in LOSSLESS_EXTENSIONS:
        raise DataError(
            f"{path}: cannot write {ext or 'a file without extension'}; imwrite writes lossless formats only "
            f"({', '.join(sorted(LOSSLESS_EXTENSIONS))})"
        )
    if bit_depth not in LOSSLESS_EXTENSIONS[ext]:
        raise DataError(f"{path}: {ext} cannot hold {bit_depth}-bit images")
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise DataError(f"{path}: expected an HxWx3 RGB or HxW(x1) gray image, got shape {np.shape(img)}")
    if bit_depth == 32:
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise DataError(f"{path}: image contains NaN or infinite values ({bad} of {arr.size})")
        q = arr.astype(np.float32)
    else:
        q = quantize(arr, bit_depth, source=str(path))
    if q.ndim == 3:
        q = np.ascontiguousarray(q[:, :, ::-1])  # RGB -> BGR for OpenCV
    params = [cv2.IMWRITE_PNG_COMPRESSION, int(compress_level)] if ext == ".png" else []
    ok, encoded = cv2.imencode(ext, q, params)
    if not ok:
        raise DataError(f"{path}: OpenCV could not encode the image as {ext}")
    atomic_write(path, encoded.tobytes())


def give_default_permissions(path: str | os.PathLike[str]) -> None:
    """Give a file the usual permissions (0666 minus the umask): ``mkstemp`` makes owner-only files."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename (readers never see half a file).

    Parent folders are created; the file gets the usual permissions (0666 minus the umask).
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file that can be written")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise DataError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        give_default_permissions(tmp)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a read-only folder: name the file, say what is safe
        Path(tmp).unlink(missing_ok=True)
        raise DataError(
            f"{path}: not written ({exc.strerror or exc}); any earlier file of that name is intact"
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@overload
def img2tensor(img: np.ndarray) -> torch.Tensor: ...
@overload
def img2tensor(img: Sequence[np.ndarray]) -> list[torch.Tensor]: ...
def img2tensor(img: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor | list[torch.Tensor]:
    """``HWC`` float image(s) -> ``CHW`` float32 tensor(s) (no value change; a list maps to a list)."""
    if isinstance(img, (list, tuple)):
        return [img2tensor(i) for i in img]
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ValueError(f"img2tensor expects an HxWxC or HxW array, got shape {arr.shape}")
    import torch

    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32))


def tensor2img(tensor: torch.Tensor) -> np.ndarray:
    """``CHW`` or ``1CHW`` tensor -> float32 ``HWC`` array (no clamping; quantise with :func:`quantize`)."""
    t = tensor.detach()
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(f"tensor2img takes one image; got a batch of {t.shape[0]} (index it first)")
        t = t[0]
    if t.ndim != 3:
        raise ValueError(f"tensor2img expects CHW or 1CHW, got shape {tuple(tensor.shape)}")
    return np.ascontiguousarray(t.float().cpu().numpy().transpose(1, 2, 0))


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has an image extension this module reads."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS
