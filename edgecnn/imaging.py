"""The one definition of host-side image preprocessing, shared by training and every runtime.

Rule 4 of ARCHITECTURE.md: the model graph holds rescaling; decoding, colour conversion and resizing
happen here, with the same function and interpolation at training and at run time. Pipeline:

    file  --decode_image-->  RGB uint8 HxWx3  --preprocess-->  uint8 HxWxC (C = 1 or 3)
    frame (BGR, from OpenCV) --bgr_to_rgb--^

Only numpy, Pillow and OpenCV: no TensorFlow. OpenCV is imported on first use (a folder's decoding, a
resize, a grayscale conversion), never at import: a one-image ``edgecnn run`` on a model-sized image never
loads it (issue 12, cold start).

Listing folders of images lives in :mod:`edgecnn.image_folders`, a file's header in :mod:`edgecnn.image_headers`
and the numpy INTER_AREA in :mod:`edgecnn.area_resize`; imaging re-exports their names.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from struct import error as struct_error

import numpy as np
from PIL import Image, ImageFile

from edgecnn.area_resize import _area_general, resize_area  # noqa: F401  (resize_area: imaging's API)
from edgecnn.errors import DataError, SizeError
from edgecnn.image_folders import (  # noqa: F401  (imaging's API, as before the split)
    IMAGE_EXTENSIONS,
    LabelledFiles,
    is_hidden,
    is_image_file,
    list_class_folders,
    list_images,
    scan_labelled_folder,
)
from edgecnn.image_headers import (  # noqa: F401  (orientation: imaging's API, as before the split)
    _PNG_END,
    _PNG_SIGNATURE,
    EXIF_ORIENTATION_TAG,
    _embedded_orientation,
    _jpeg_frame,
    exif_orientation,
    orient,
    pil_orientation,
)

#: Interpolation names accepted in model cards and ``--interpolation``; values are OpenCV's flags
#: (cv2.INTER_AREA, INTER_LINEAR, INTER_NEAREST, INTER_CUBIC, INTER_LANCZOS4; a test checks them against cv2).
INTERPOLATIONS: dict[str, int] = {
    "area": 3,
    "bilinear": 1,
    "nearest": 0,
    "bicubic": 2,
    "lanczos": 4,
}
COLORS = ("rgb", "grayscale", "bgr")
#: How an image is fitted to the input size: stretched, or its shortest side resized and the centre cropped
#: (Ultralytics' and torchvision's classification transforms).
RESIZE_MODES = ("stretch", "shortest-side+center-crop")

# A truncated JPEG must be an error (skipped with a warning), never a silently half-grey image.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's warnings about a file (a decompression bomb, corrupt EXIF) would print a second, raw line per image from
# decoder threads; the file's row (or the one error line) says what is wrong. Filters set once: catch_warnings is
# not thread-safe.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")

#: The default pixel limit (width x height) of every image decoded (``--max-pixels``, ``EDGECNN_MAX_PIXELS``):
#: 64 Mpx is a 9000 x 7000 photo, about 190 MB of RGB once decoded. A larger image is refused from its header,
#: before Pillow or OpenCV allocates anything (a 389 KB PNG can claim 20000 x 20000: 1.2 GB decoded).
DEFAULT_MAX_PIXELS = 64_000_000
MAX_PIXELS_ENV = "EDGECNN_MAX_PIXELS"
_limit = {"pixels": DEFAULT_MAX_PIXELS}


def set_max_pixels(pixels: int | None) -> int:
    """Set the one pixel limit of every decoder (Pillow's ``Image.MAX_IMAGE_PIXELS``, OpenCV's
    ``OPENCV_IO_MAX_IMAGE_PIXELS`` and the header check of :func:`decode_image`); None: ``$EDGECNN_MAX_PIXELS`` or
    :data:`DEFAULT_MAX_PIXELS`. Returns the limit in force.

    Raises:
        ConfigError: a limit that is not a positive number.
    """
    from edgecnn.errors import ConfigError

    if pixels is None:
        env = os.environ.get(MAX_PIXELS_ENV, "").strip()
        try:
            pixels = int(env) if env else DEFAULT_MAX_PIXELS
        except ValueError as exc:
            raise ConfigError(f"Expected {MAX_PIXELS_ENV} as a whole number of pixels; received {env!r}.") from exc
    if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 1:
        raise ConfigError(f"Expected --max-pixels as a positive whole number of pixels; received {pixels!r}.")
    _limit["pixels"] = pixels
    Image.MAX_IMAGE_PIXELS = pixels  # Pillow warns above it and refuses above twice it; our header check refuses first
    os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(pixels)  # read by OpenCV's decoders (a second guard)
    return pixels


def _from_env() -> None:
    env = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if env.isdigit() and int(env) > 0:
        _limit["pixels"] = int(env)
    Image.MAX_IMAGE_PIXELS = _limit["pixels"]


_from_env()


def max_pixels() -> int:
    """The pixel limit in force (see :func:`set_max_pixels`)."""
    return _limit["pixels"]


def check_pixels(width: int, height: int, name: str) -> None:
    """Refuse an image whose header claims more than :func:`max_pixels` (or a non-positive size).

    Raises:
        UnreadableImageError: one line naming the size, the limit and the option that raises it.
    """
    if width <= 0 or height <= 0:
        raise UnreadableImageError(f"Cannot decode image {name}: its header gives a size of {width}x{height}.")
    limit = _limit["pixels"]
    if width * height > limit:
        raise UnreadableImageError(
            f"Image {name} is {width}x{height} ({width * height:,} pixels), over the limit of {limit:,} pixels; "
            f"skipped before decoding (raise it with --max-pixels if the image is genuine).")


def _file_limit() -> int:
    """The largest image file read: 8 bytes per allowed pixel (16-bit RGBA, uncompressed) plus 16 MB of metadata."""
    return _limit["pixels"] * 8 + 16_000_000


def read_image_file(path: str | os.PathLike[str], name: str | None = None) -> bytes:
    """The bytes of an image file, read only if it is a regular file (a FIFO, a device or a socket is refused
    without blocking) of a size within :func:`_file_limit`.

    Raises:
        UnreadableImageError: not found, not a regular file, too large, or unreadable.
    """
    import stat

    from edgecnn.fileio import read_known_size

    name = name or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _read_error(exc, name) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableImageError(f"Cannot read image {name}: it is {_kind(st.st_mode)}, not a regular file.")
        if st.st_size > _file_limit():
            raise UnreadableImageError(f"Image file {name} is {st.st_size:,} bytes, over the {_file_limit():,} bytes "
                                       f"that {_limit['pixels']:,} pixels (--max-pixels) can take; skipped.")
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = read_known_size(fh, st.st_size, _file_limit())
        if data is None:
            raise UnreadableImageError(f"Image file {name} grew past {_file_limit():,} bytes while read; skipped.")
        return data
    except OSError as exc:
        raise _read_error(exc, name) from exc
    except MemoryError as exc:
        raise UnreadableImageError(f"Cannot read image {name}: it needs more memory than this machine has.") from exc
    finally:
        os.close(fd)


def check_regular_file(path: str | os.PathLike[str], name: str | None = None) -> None:
    """Refuse a path that is not a regular file (FIFO, device, socket, folder) without opening it.

    Raises:
        UnreadableImageError: not found or not a regular file.
    """
    import stat

    try:
        st = os.stat(path)
    except OSError as exc:
        raise _read_error(exc, name or str(path)) from exc
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableImageError(f"Cannot read image {name or path}: it is {_kind(st.st_mode)}, not a regular file.")
    if st.st_size > _file_limit():
        raise UnreadableImageError(f"Image file {name or path} is {st.st_size:,} bytes, over the {_file_limit():,} "
                                   f"bytes that {_limit['pixels']:,} pixels (--max-pixels) can take; skipped.")


def _kind(mode: int) -> str:
    import stat

    for test, what in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return what
    return "a special file"


class UnreadableImageError(DataError):
    """An image file that cannot be decoded (zero bytes, truncated, not really an image)."""


def color_for_channels(channels: int) -> str:
    """``1 -> "grayscale"``, ``3 -> "rgb"``."""
    if channels == 1:
        return "grayscale"
    if channels == 3:
        return "rgb"
    raise SizeError(f"Expected --channels 1 or 3; received {channels}.")  # a usage error (exit 2)


def decode_image(source: str | os.PathLike[str] | bytes, opencv: bool = True) -> np.ndarray:
    """Decode an image file (any of PNG/JPEG/BMP/GIF/WebP/TIFF, any mode) to RGB uint8 HxWx3.

    Alpha is dropped (as Keras' ``load_img`` does); palette, 16-bit and CMYK images are converted;
    an animated GIF gives its first frame. EXIF orientation is applied (the pixels are turned upright, as a
    phone's gallery, ``cv2.imread`` and ``PIL.ImageOps.exif_transpose`` show them), by every decoder alike:
    training, ``run``, ``evaluate``, ``capture`` and ``predict(path | bytes | PIL image)`` all come here.
    Arrays (``predict(array)``, camera frames) are taken as given.

    Files that OpenCV decodes to exactly Pillow's pixels (8-bit PNG, 8/24-bit BMP, complete 1- or
    3-component JPEG) go through OpenCV, which releases the GIL so decoder threads really run in
    parallel; everything else, and anything OpenCV refuses, goes through Pillow. The choice depends only
    on the file's bytes, so training and every runtime decode a given file the same way.

    Args:
        source: A path or the file's bytes.
        opencv: False decodes with Pillow only (same pixels: tested per format); a single image is
            decoded this way so that it does not pay for importing OpenCV.

    Raises:
        UnreadableImageError: zero-byte, truncated or undecodable file.
    """
    name = "<bytes>" if isinstance(source, bytes | bytearray | memoryview) else str(source)
    if not opencv and not isinstance(source, bytes | bytearray | memoryview):
        check_regular_file(source, name)  # a FIFO would block Pillow's open(), a device fill memory
        return _decode_pillow(Path(source), name)  # by path: Pillow imports only the plugin the name suggests
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if len(data) > _file_limit():
            raise UnreadableImageError(f"Image {name} is {len(data):,} bytes, over the {_file_limit():,} bytes that "
                                       f"{_limit['pixels']:,} pixels (--max-pixels) can take.")
    else:
        data = read_image_file(source, name)
    rgb = _decode_opencv(data, name) if opencv else None
    return rgb if rgb is not None else _decode_pillow(data, name)


def _read_error(exc: OSError, name: str) -> UnreadableImageError:
    if isinstance(exc, FileNotFoundError):
        return UnreadableImageError(f"Image not found: {name}")
    return UnreadableImageError(f"Cannot read image {name}: {exc.strerror or exc}")




def _decode_opencv(data: bytes, name: str = "<bytes>") -> np.ndarray | None:
    """RGB pixels via OpenCV for the files it decodes exactly like Pillow; None means "use Pillow".

    The size in the header is checked against :func:`max_pixels` before OpenCV sees the file (OpenCV would allocate
    what a 715-byte PNG claims); a file whose header cannot be read goes to Pillow, which checks it the same way.
    """
    tail = data[-64:].rstrip(b"\0")  # only the end matters; never copy the whole file per image
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 33 or data[12:16] != b"IHDR" or data[24] > 8 or not tail.endswith(_PNG_END):
            return None
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    elif data[:2] == b"BM":
        if len(data) < 30 or int.from_bytes(data[28:30], "little") not in (8, 24):
            return None
        width = int.from_bytes(data[18:22], "little", signed=True)
        height = abs(int.from_bytes(data[22:26], "little", signed=True))
    elif data[:2] == b"\xff\xd8":
        frame = _jpeg_frame(data)
        if not tail.endswith(b"\xff\xd9") or frame is None or frame[0] not in (1, 3):
            return None
        width, height = frame[1], frame[2]
    else:
        return None
    if width <= 0 or height <= 0:
        return None  # Pillow says what is wrong with it
    check_pixels(width, height, name)
    orientation = _embedded_orientation(data)
    if orientation is None:
        return None  # an orientation only Pillow reads (XMP, a PNG text profile): Pillow decodes
    import cv2

    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:
        return None  # Pillow decodes it or says why not, in one line
    if bgr is None or bgr.ndim != 3 or bgr.shape[2] != 3:
        return None
    return orient(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), orientation)




def pil_to_rgb(im: Image.Image, name: str = "<PIL image>") -> np.ndarray:
    """A loaded PIL image (any mode) as RGB uint8 HxWx3, exactly as :func:`decode_image` converts files.

    16-bit and 32-bit integer gray are scaled to 0..255 (by 65535 when any value exceeds 255), float gray
    is clipped, alpha is dropped, palette and CMYK are converted. Its EXIF orientation is applied (an image
    already passed through ``ImageOps.exif_transpose`` has none left, so it is not turned twice).

    Raises:
        UnreadableImageError: an image Pillow cannot convert (e.g. an unsupported mode).
    """
    check_pixels(int(im.size[0]), int(im.size[1]), name)
    return orient(_pil_pixels(im, name), pil_orientation(im))


def _pil_pixels(im: Image.Image, name: str) -> np.ndarray:
    try:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float32)
            top = 65535.0 if arr.max() > 255 else 255.0
            gray = np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
            return np.repeat(gray[:, :, None], 3, axis=2)
        if im.mode == "F":
            gray = np.clip(np.asarray(im), 0, 255).astype(np.uint8)
            return np.repeat(gray[:, :, None], 3, axis=2)
        return np.array(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise UnreadableImageError(f"Cannot convert image {name} (mode {im.mode}) to RGB: {exc}") from exc


def _decode_pillow(source: bytes | Path, name: str) -> np.ndarray:
    """Decode with Pillow: a file's bytes, or a path (then Pillow imports just the plugin of its extension, not
    the five common ones: a one-image run's cold start)."""
    import io
    try:
        with Image.open(source if isinstance(source, Path) else io.BytesIO(source)) as im:
            check_pixels(int(im.size[0]), int(im.size[1]), name)  # from the header, before any pixel is decoded
            im.seek(0)
            im.load()
            return pil_to_rgb(im, name)
    except UnreadableImageError:
        raise
    except OSError as exc:
        if exc.errno is not None:  # opening or reading the file, not decoding it
            raise _read_error(exc, name) from exc
        raise _decode_error(exc, name) from exc
    except Image.DecompressionBombError as exc:  # Pillow's own check, in Image.open, before ours could run
        import re

        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(found.group(1)):,} pixels" if found else "more pixels"
        raise UnreadableImageError(
            f"Image {name} has {pixels}, over the limit of {_limit['pixels']:,} pixels; skipped before decoding "
            f"(raise it with --max-pixels if the image is genuine).") from exc
    except (SyntaxError, ValueError, TypeError, IndexError, KeyError, struct_error, EOFError, ZeroDivisionError,
            OverflowError, RecursionError) as exc:
        raise _decode_error(exc, name) from exc
    except MemoryError as exc:
        raise UnreadableImageError(f"Cannot decode image {name}: it needs more memory than this machine has.") from exc


def _decode_error(exc: Exception, name: str) -> UnreadableImageError:
    msg = str(exc).replace("<_io.BytesIO object", "<").split(" at 0x")[0]
    if "cannot identify image file" in msg:
        msg = "not an image file or an unsupported format"
    return UnreadableImageError(f"Cannot decode image {name}: {msg or type(exc).__name__}")


def bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    """An OpenCV frame (BGR, BGRA or gray) as RGB uint8 HxWx3."""
    import cv2

    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def preprocess(rgb: np.ndarray, height: int, width: int, color: str = "rgb", interpolation: str = "area",
               resize_mode: str = "stretch") -> np.ndarray:
    """Colour-convert and resize an RGB uint8 image to the model's input: uint8 HxWxC.

    This is the only place where images are resized or converted to grayscale, for training and for
    every runtime, so ``edgecnn run`` sees exactly the pixels training saw. ``color="bgr"`` reverses the
    channels (models trained on OpenCV frames); ``resize_mode="shortest-side+center-crop"`` scales the image so
    that it covers the input size (torchvision's ``Resize(int)``: the long side truncated) and crops the centre
    (``CenterCrop``: offsets rounded), as Ultralytics and torchvision classifiers expect.
    """
    if interpolation not in INTERPOLATIONS:
        raise DataError(f"Expected interpolation in {sorted(INTERPOLATIONS)}; received {interpolation!r}.")
    if color not in COLORS:
        raise DataError(f"Expected color in {COLORS}; received {color!r}.")
    if resize_mode not in RESIZE_MODES:
        raise DataError(f"Expected resize mode in {RESIZE_MODES}; received {resize_mode!r}.")
    img = rgb
    if resize_mode != "stretch":
        img = _cover_and_crop(img, height, width, interpolation)
    if color == "bgr":
        img = np.ascontiguousarray(img[:, :, ::-1])
    elif color == "grayscale":
        img = rgb_to_gray(img)
    if img.shape[0] != height or img.shape[1] != width:
        if interpolation == "area" and "cv2" not in sys.modules and _area_general(img.shape[0], img.shape[1], height, width):
            img = resize_area(img, height, width)  # OpenCV's exact pixels, without importing OpenCV for one image
        else:
            import cv2

            img = cv2.resize(img, (width, height), interpolation=INTERPOLATIONS[interpolation])
    if img.ndim == 2:
        img = img[:, :, None]
    return np.ascontiguousarray(img, dtype=np.uint8)


#: Resamplers the common consumers of a model use, by name: ``edgecnn`` (the card's interpolation, what training
#: and every edgecnn runtime use), ``mediapipe`` (MediaPipe Tasks' ImageToTensor on CPU: a bilinear
#: ``warpPerspective`` mapping the image's corners onto the input's, no antialiasing), ``opencv-linear``
#: (``cv2.resize`` INTER_LINEAR: OpenCV DNN, most C++ apps) and ``pillow-bilinear`` (Pillow's antialiased
#: ``Image.resize(BILINEAR)``: Python apps, Keras' ``load_img``). Export measures top-1 agreement under each.
CONSUMER_RESIZES = ("edgecnn", "mediapipe", "opencv-linear", "pillow-bilinear")
#: What training draws a resize method from, per image and epoch (``--resize-augment``, on by default): area,
#: bilinear without and with antialiasing, nearest.
TRAIN_RESIZES = ("area", "bilinear", "pillow-bilinear", "nearest")


def preprocess_as(rgb: np.ndarray, height: int, width: int, color: str, method: str, interpolation: str = "area") -> np.ndarray:
    """:func:`preprocess` with another resampler: one of :data:`INTERPOLATIONS` or :data:`CONSUMER_RESIZES`
    (``edgecnn`` means ``interpolation``, the card's). uint8 HxWxC, the colour converted first as in
    :func:`preprocess`."""
    if method == "edgecnn":
        method = interpolation
    if method in INTERPOLATIONS:
        return preprocess(rgb, height, width, color, method)
    if method == "opencv-linear":
        return preprocess(rgb, height, width, color, "bilinear")
    if method not in CONSUMER_RESIZES:
        raise DataError(f"Expected a resize method in {sorted({*INTERPOLATIONS, *CONSUMER_RESIZES})}; received {method!r}.")
    img = rgb if color == "rgb" else rgb_to_gray(rgb)
    if img.shape[0] != height or img.shape[1] != width:
        if method == "pillow-bilinear":
            img = np.asarray(Image.fromarray(img).resize((width, height), Image.Resampling.BILINEAR))
        else:  # mediapipe
            import cv2

            m = np.array([[width / img.shape[1], 0, 0], [0, height / img.shape[0], 0]], np.float64)
            img = cv2.warpAffine(img, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if img.ndim == 2:
        img = img[:, :, None]
    return np.ascontiguousarray(img, dtype=np.uint8)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 HxWx3 as gray uint8 HxW, pixel for pixel what ``cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)`` gives.

    OpenCV's fixed-point BT.601 weights (0.299, 0.587, 0.114 scaled by 2**15, rounded half up); a test
    compares all 16.7 million colours with OpenCV. In numpy, so a grayscale model's one-image cold start
    does not import OpenCV (about 20 MB and 40 ms).
    """
    x = rgb.astype(np.uint32)
    gray = x[..., 0] * 9798 + x[..., 1] * 19235 + x[..., 2] * 3735 + (1 << 14)
    return (gray >> 15).astype(np.uint8)


def _cover_and_crop(img: np.ndarray, height: int, width: int, interpolation: str) -> np.ndarray:
    """Resize so the image covers height×width keeping its aspect ratio, then crop the centre to height×width."""
    h, w = img.shape[:2]
    scale = max(height / h, width / w)
    if h <= w:  # the short side gets the target exactly, the long side is truncated (torchvision's Resize(int))
        new_h, new_w = max(height, round(h * scale)), max(width, int(w * scale))
    else:
        new_h, new_w = max(height, int(h * scale)), max(width, round(w * scale))
    if (new_h, new_w) != (h, w):
        import cv2

        img = cv2.resize(img, (new_w, new_h), interpolation=INTERPOLATIONS[interpolation])
    top, left = int(round((new_h - height) / 2.0)), int(round((new_w - width) / 2.0))
    return img[top : top + height, left : left + width]




def load_image(
    path: str | os.PathLike[str], height: int, width: int, color: str = "rgb", interpolation: str = "area",
    resize_mode: str = "stretch",
) -> np.ndarray:
    """Decode and preprocess one image file: uint8 HxWxC."""
    return preprocess(decode_image(path), height, width, color, interpolation, resize_mode)


#: Largest side accepted for a model input: beyond it one image alone takes hundreds of MiB (refused up front,
#: instead of an out-of-memory crash after minutes of decoding).
MAX_IMG_SIDE = 4096


def parse_img_size(value: str | int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``"64"``, ``64``, ``"48x64"`` or ``(48, 64)`` as (height, width), both positive."""
    try:
        if isinstance(value, (tuple, list)):
            h, w = (int(v) for v in value)
        elif isinstance(value, int):
            h = w = value
        else:
            text = str(value).lower().replace("×", "x").strip()
            h, w = (int(v) for v in text.split("x")) if "x" in text else (int(text), int(text))
    except (TypeError, ValueError) as exc:
        raise SizeError(f"Expected --img-size N or HxW (e.g. 64 or 48x64); received {value!r}.") from exc
    if h <= 0 or w <= 0:
        raise SizeError(f"Expected a positive --img-size; received {value!r}.")
    if max(h, w) > MAX_IMG_SIDE:
        gib = h * w * 3 * 4 / 2**30
        raise SizeError(f"Expected --img-size at most {MAX_IMG_SIDE} px per side; received {value!r} ({gib:,.1f} GiB of "
                        f"float32 per RGB image). Image classifiers train at 32-512 px.")
    return h, w
