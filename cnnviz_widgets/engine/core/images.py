"""Loading images safely.

Every lesson starts from a picture: one of the bundled sample photos (`zoo.samples`), or a
file the learner uploads. Uploaded files can be anything: a text file, a PDF, a
half-downloaded JPEG, a 16-bit scan, a CMYK print file, an animated GIF, a phone photo
that is stored on its side, or a deliberately huge "decompression bomb". This module
turns all of those into either

* a plain 8-bit RGB :class:`PIL.Image.Image`, detached from the file, with a short
  human-readable note in ``img.info["cnnviz_note"]`` whenever something was converted
  (so the app can show "animated image: using the first of 12 frames"), or
* one :class:`BadImage` error whose message names the file and says what is wrong, in
  words a student understands.

Pillow's decompression-bomb guard stays on: this module never changes
``Image.MAX_IMAGE_PIXELS`` or ``ImageFile.LOAD_TRUNCATED_IMAGES``. A lower limit,
``max_pixels``, is checked from the file header before anything is decoded.

It also has two small converters used by the model wrapper's ``preprocess``:
:func:`as_pil` (PIL image, uint8/float array or [0, 1] tensor -> RGB PIL image) and
:func:`image_to_array` (-> uint8 ``H x W x 3`` array).

No ipywidgets or matplotlib here: this is engine code.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "BadImage",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIZE",
    "as_pil",
    "image_to_array",
    "load_image",
]

#: Images with more pixels than this are refused from their header, before decoding.
DEFAULT_MAX_PIXELS = 40_000_000
#: Both sides of an image must be at least this many pixels.
DEFAULT_MIN_SIZE = 32

_NOTE_KEY = "cnnviz_note"

# Formats in which several frames mean an animation rather than pages.
_ANIMATED_FORMATS = {"GIF", "PNG", "WEBP", "FLI", "AVIF"}
# Formats whose extra frames are not something to tell the learner about
# (MPO: phone JPEGs carrying a second, preview or depth, picture).
_SILENT_FRAME_FORMATS = {"MPO"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


class BadImage(ValueError):
    """An input that cannot be used as a picture; the message says why, for a student."""


# ---------------------------------------------------------------------------
# load_image
# ---------------------------------------------------------------------------


def _label(name: str | None) -> str:
    return f"'{name}'" if name else "the image"


def _read_source(source: Any, name: str | None) -> tuple[bytes, str | None]:
    """Read *source* into memory; return its bytes and a display name."""
    if isinstance(source, dict) and "content" in source:
        # One entry of an ipywidgets FileUpload value: {"name": ..., "content": ...}.
        name = name or source.get("name") or None
        source = source["content"]
    if source is None:
        raise BadImage("No file was given: choose or upload an image first.")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or path.name or str(path)
        if not path.exists():
            raise BadImage(f"{_label(name)} was not found (looked for {str(path)!r}).")
        if path.is_dir():
            raise BadImage(f"{_label(name)} is a folder, not an image file.")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise BadImage(f"{_label(name)} could not be read ({e.strerror or e}).") from e
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        if name is None:
            fname = getattr(source, "name", None)
            if isinstance(fname, (str, os.PathLike)):
                name = Path(fname).name or None
        try:
            data = source.read()
        except Exception as e:  # closed file, text-mode error...
            raise BadImage(f"{_label(name)} could not be read ({e}).") from e
        if isinstance(data, str):
            raise BadImage(
                f"{_label(name)} was opened as text; open image files in binary mode ('rb')."
            )
        data = bytes(data or b"")
    else:
        raise TypeError(
            "load_image() takes a file path, bytes, or a binary file object, "
            f"not {type(source).__name__}."
        )
    if not data:
        if name:
            raise BadImage(f"{_label(name)} is empty (0 bytes): no file was given.")
        raise BadImage("No file was given: the upload is empty (0 bytes).")
    return data, name


def _peek_header(data: bytes) -> tuple[str, tuple[int, int]] | None:
    """Format and size from the header alone, without Pillow's bomb check or decoding.

    Mirrors what ``Image.open`` does, but stops before the decompression-bomb check so
    that a huge image can be refused (and its size reported) by :func:`load_image`.
    Returns None when no plugin recognises the header.
    """
    prefix = data[:16]
    Image.preinit()
    for loader in (None, Image.init):
        if loader is not None:
            loader()
        for fmt in list(Image.ID):
            try:
                factory, accept = Image.OPEN[fmt]
            except KeyError:
                continue
            try:
                ok = not accept or accept(prefix)
                if ok and not isinstance(ok, str):
                    im = factory(io.BytesIO(data), "")
                    try:
                        return fmt, tuple(im.size)  # type: ignore[return-value]
                    finally:
                        im.close()
            except Exception:  # noqa: BLE001 - any failure means "not this format"
                continue
    return None


def _sniff_hint(data: bytes) -> str:
    head = data[:64]
    if head.startswith(b"%PDF"):
        return "it looks like a PDF document; export the page as PNG or JPEG"
    if b"ftyphei" in head or b"ftyphev" in head or b"ftypmif1" in head:
        return "it looks like a HEIC photo; save it as JPEG or PNG first"
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        return "it looks like an SVG drawing; export it as PNG first"
    try:
        head.decode("utf-8")
        if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
            return "it looks like a text file"
    except UnicodeDecodeError:
        pass
    return "unknown or unsupported format; use a JPEG or PNG file"


def _too_large(name: str | None, size: tuple[int, int] | None, limit: int) -> BadImage:
    if size is not None:
        w, h = size
        return BadImage(
            f"{_label(name)} is too large ({w} x {h} pixels = {w * h:,} pixels, "
            f"limit {limit:,}). Resize it to a few megapixels and try again."
        )
    return BadImage(
        f"{_label(name)} is too large (more than {limit:,} pixels). "
        "Resize it to a few megapixels and try again."
    )


def load_image(
    source: Any,
    *,
    name: str | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Open an image file and return it as a fresh 8-bit RGB PIL image.

    Parameters
    ----------
    source
        A path (``str`` or :class:`os.PathLike`), the file's bytes (``bytes``,
        ``bytearray``, ``memoryview``, e.g. from an upload widget), a binary
        file-like object, or one ipywidgets ``FileUpload`` entry (a dict with
        ``"content"`` and ``"name"``).
    name
        The file name to use in messages (defaults to the path's or file object's name).
    min_size
        Both sides must be at least this many pixels (after EXIF rotation).
    max_pixels
        Refuse images with more pixels than this, from the header, before decoding.
        ``None`` leaves only Pillow's own decompression-bomb limit (which always applies).

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``, not tied to any open file. When something was converted
        (first frame of an animation, 16-bit scaled to 8-bit, CMYK, grayscale,
        transparency filled with white, EXIF rotation), ``img.info["cnnviz_note"]``
        says so in one short sentence.

    Raises
    ------
    BadImage
        Not an image, truncated or damaged, too large, too small, or nothing given.
    TypeError
        *source* is of a type that cannot hold a file.
    """
    data, name = _read_source(source, name)
    label = _label(name)

    header = _peek_header(data)
    if header is not None and max_pixels is not None:
        w, h = header[1]
        if w * h > max_pixels:
            raise _too_large(name, (w, h), max_pixels)

    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_large(
                name, header[1] if header else None, Image.MAX_IMAGE_PIXELS or 0
            ) from None
        except UnidentifiedImageError:
            raise BadImage(
                f"{label} is not an image Pillow can read ({_sniff_hint(data)})."
            ) from None
        except (OSError, SyntaxError, ValueError, struct.error, EOFError) as e:
            raise BadImage(
                f"{label} is damaged: its header could not be read ({e})."
            ) from None

        fmt = img.format or (header[0] if header else "")
        w, h = img.size
        if max_pixels is not None and w * h > max_pixels:
            raise _too_large(name, (w, h), max_pixels)
        if min(w, h) < min_size:
            raise BadImage(
                f"{label} is too small ({w} x {h} pixels); the model needs at least "
                f"{min_size} x {min_size} pixels."
            )

        try:
            n_frames = int(getattr(img, "n_frames", 1) or 1)
            if n_frames > 1:
                img.seek(0)
                if fmt not in _SILENT_FRAME_FORMATS:
                    kind = "animated image" if fmt in _ANIMATED_FORMATS else "multi-page image"
                    notes.append(f"{kind}: using the first of {n_frames} frames")
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_large(name, img.size, Image.MAX_IMAGE_PIXELS or 0) from None
        except (OSError, SyntaxError, ValueError, struct.error, EOFError, IndexError) as e:
            if _is_truncation(e):
                problem = "is truncated (the file is incomplete)"
            else:
                problem = "is damaged (or truncated)"
            raise BadImage(
                f"{label} {problem} and cannot be decoded ({e}). "
                "Try downloading or exporting it again."
            ) from None

        try:
            orientation = int(img.getexif().get(0x0112, 1) or 1)
        except Exception:  # noqa: BLE001 - unreadable EXIF: keep the pixels as stored
            orientation = 1
        if 2 <= orientation <= 8:
            try:
                rotated = ImageOps.exif_transpose(img)
            except Exception:  # noqa: BLE001
                rotated = None
            if rotated is not None and rotated is not img:
                notes.append("turned upright as the camera's EXIF orientation says")
                img.close()
                img = rotated

    out, conv_notes = _to_rgb(img)
    notes.extend(conv_notes)
    if out is img:
        out = img.copy()
    img.close()

    if min(out.size) < min_size:  # defensive: size can only change by rotation
        raise BadImage(
            f"{label} is too small ({out.width} x {out.height} pixels); the model needs "
            f"at least {min_size} x {min_size} pixels."
        )

    out.info = {}
    if notes:
        out.info[_NOTE_KEY] = "; ".join(notes)
    if name:
        out.info["cnnviz_name"] = name
    if fmt:
        out.info["cnnviz_format"] = fmt
    return out


def _is_truncation(e: BaseException) -> bool:
    msg = str(e).lower()
    return any(
        s in msg
        for s in ("truncated", "premature end", "not enough data", "unexpected end", "eof")
    ) or isinstance(e, EOFError)


# ---------------------------------------------------------------------------
# mode conversion
# ---------------------------------------------------------------------------


def _to_rgb(img: Image.Image) -> tuple[Image.Image, list[str]]:
    """Convert any Pillow mode to 8-bit RGB; return the image and notes on what was done."""
    notes: list[str] = []
    mode = img.mode

    if mode == "RGB":
        return _icc_to_srgb(img), notes

    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        arr = np.asarray(img)
        arr8, how = _scale_to_8bit(arr, mode)
        notes.append(how)
        return Image.fromarray(arr8).convert("RGB"), notes

    if mode == "CMYK":
        notes.append("CMYK image converted to RGB")
        return _cmyk_to_rgb(img), notes

    if mode in ("1", "L"):
        notes.append("grayscale image: copied to the three colour channels")
        return img.convert("RGB"), notes

    if mode == "P":
        if "transparency" in img.info:
            img = img.convert("RGBA")
            mode = "RGBA"
        else:
            return img.convert("RGB"), notes

    if mode in ("LA", "La", "PA"):
        notes.append("grayscale image: copied to the three colour channels")
        img = img.convert("RGBA")
        mode = "RGBA"

    if mode == "RGBa":
        img = img.convert("RGBA")
        mode = "RGBA"

    if mode == "RGBA":
        alpha = img.getchannel("A")
        lo, _ = alpha.getextrema()
        if lo < 255:
            notes.append("transparent areas filled with white")
            white = Image.new("RGBA", img.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, img).convert("RGB"), notes
        return img.convert("RGB"), notes

    # RGBX, YCbCr, LAB, HSV and anything else Pillow can convert.
    try:
        return img.convert("RGB"), notes
    except (ValueError, OSError) as e:
        raise BadImage(f"images in colour mode {mode!r} are not supported ({e}).") from None


def _scale_to_8bit(arr: np.ndarray, mode: str) -> tuple[np.ndarray, str]:
    """Map a 16-bit, 32-bit integer or float grayscale array onto 0..255 (no clipping)."""
    a = arr.astype(np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, 0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if mode in _SIXTEEN_BIT_MODES or (mode == "I" and lo >= 0 and 255 < hi <= 65535):
        # The full 16-bit range: a dark 16-bit photo stays dark.
        scaled = a * (255.0 / 65535.0)
        how = "16-bit image scaled to 8 bits (0..65535 -> 0..255)"
    elif mode == "F" and lo >= 0.0 and hi <= 1.0:
        scaled = a * 255.0
        how = "floating-point image (0..1) scaled to 8 bits"
    elif mode == "I" and lo >= 0 and hi <= 255:
        scaled = a
        how = "32-bit integer image converted to 8 bits"
    else:
        # Unknown range: stretch the image's own range to 0..255.
        scaled = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        how = f"high-bit-depth image: its range {lo:g}..{hi:g} scaled to 0..255"
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8), how


def _icc_to_srgb(img: Image.Image) -> Image.Image:
    """Convert an RGB image with an embedded (non-sRGB) ICC profile to sRGB, if possible."""
    icc = img.info.get("icc_profile")
    if not icc:
        return img
    try:
        from PIL import ImageCms  # deferred: optional, Pillow may be built without LittleCMS

        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        desc = (ImageCms.getProfileDescription(src) or "").lower()
        if "srgb" in desc:
            return img
        return ImageCms.profileToProfile(
            img, src, ImageCms.createProfile("sRGB"), outputMode="RGB"
        ) or img
    except Exception:  # noqa: BLE001 - no LittleCMS, or a broken profile: keep as is
        return img


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    icc = img.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms  # deferred: optional, Pillow may be built without LittleCMS

            out = ImageCms.profileToProfile(
                img,
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",
            )
            if out is not None:
                return out
        except Exception:  # noqa: BLE001 - fall back to Pillow's plain conversion
            pass
    return img.convert("RGB")


# ---------------------------------------------------------------------------
# as_pil / image_to_array
# ---------------------------------------------------------------------------


def image_to_array(img: Any) -> np.ndarray:
    """Return *img* (anything :func:`as_pil` accepts) as a writable uint8 ``H x W x 3`` array."""
    pil = as_pil(img)
    return np.array(pil, dtype=np.uint8, copy=True)


def _float_to_uint8(a: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(a).all():
        raise BadImage(f"{what} contains NaN or infinite values; it cannot be shown as an image.")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    tol = 1e-3
    if lo < -tol or hi > 1 + tol:
        raise BadImage(
            f"{what} has values from {lo:.3g} to {hi:.3g}, but a float image must be in "
            "[0, 1]. If it is a normalised model input, undo the normalisation first "
            "(e.g. net.deprocess(x))."
        )
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)


def _hwc_to_pil(a: np.ndarray, what: str) -> Image.Image:
    """uint8 H x W, H x W x 1, H x W x 3 or H x W x 4 array -> RGB PIL image."""
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(a)).convert("RGB")
    if a.ndim == 3 and a.shape[2] == 3:
        return Image.fromarray(np.ascontiguousarray(a))
    if a.ndim == 3 and a.shape[2] == 4:
        rgba = Image.fromarray(np.ascontiguousarray(a))
        return _to_rgb(rgba)[0]
    raise BadImage(
        f"{what} has shape {tuple(a.shape)}; expected H x W x 3 (or H x W, H x W x 1, "
        "H x W x 4)."
    )


def _array_to_pil(a: np.ndarray, what: str = "the array") -> Image.Image:
    if a.ndim == 4:
        if a.shape[0] != 1:
            raise BadImage(
                f"{what} is a batch of {a.shape[0]} images (shape {tuple(a.shape)}); "
                "pass one image at a time."
            )
        a = a[0]
    # Channels-first (C x H x W) with C in 1, 3, 4 and a last axis that is not a channel axis.
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint8:
        pass
    elif np.issubdtype(a.dtype, np.floating):
        a = _float_to_uint8(a.astype(np.float64), what)
    elif np.issubdtype(a.dtype, np.integer):
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo < 0 or hi > 255:
            raise BadImage(
                f"{what} has integer values from {lo} to {hi}; an integer image must be "
                "in 0..255 (uint8)."
            )
        a = a.astype(np.uint8)
    else:
        raise TypeError(f"{what} has dtype {a.dtype}, which is not an image type.")
    return _hwc_to_pil(a, what)


def as_pil(x: Any) -> Image.Image:
    """Convert a picture in any of the kit's forms to an RGB PIL image.

    Accepts a PIL image (any mode; converted like :func:`load_image` does), a numpy
    array (uint8 ``H x W x 3`` / ``H x W`` / ``H x W x 4``, or float in [0, 1], channels
    last or first), or a torch tensor in [0, 1] shaped ``C x H x W`` or ``1 x C x H x W``
    (``uint8`` tensors in 0..255 too). Already-RGB PIL images are returned as they are.

    Raises :class:`BadImage` for the right type with wrong values or shape (e.g. a
    normalised tensor outside [0, 1], a batch of several images) and :class:`TypeError`
    for anything else.
    """
    if isinstance(x, Image.Image):
        if x.mode == "RGB":
            return x
        x.load()
        return _to_rgb(x)[0]
    if isinstance(x, np.ndarray):
        return _array_to_pil(x, "the array")
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if t.is_complex():
            raise TypeError("a complex tensor is not an image.")
        if t.dim() not in (2, 3, 4):
            raise BadImage(
                f"the tensor has shape {tuple(t.shape)}; expected C x H x W or 1 x C x H x W."
            )
        if t.dim() == 3 and t.shape[0] not in (1, 3, 4):
            raise BadImage(
                f"the tensor has shape {tuple(t.shape)}; expected C x H x W with 1 or 3 "
                "channels first."
            )
        if t.dim() == 4 and t.shape[1] not in (1, 3, 4):
            raise BadImage(
                f"the tensor has shape {tuple(t.shape)}; expected 1 x C x H x W with 1 or 3 "
                "channels."
            )
        if t.dtype == torch.bool:
            a = t.numpy()
        elif t.dtype == torch.uint8:
            a = t.numpy()
        elif t.is_floating_point():
            a = t.to(torch.float64).numpy()
        else:
            a = t.to(torch.int64).numpy()
        if a.ndim >= 3:  # tensors are always channels first
            a = np.moveaxis(a, -3, -1)
        return _array_to_pil(a, "the tensor")
    raise TypeError(
        "expected a PIL image, a numpy array or a torch tensor, "
        f"not {type(x).__module__}.{type(x).__name__}."
    )
