"""Tests for cnnviz_widgets.engine.core.images: safe loading, clear errors, the bundled samples.

Every bad file is made here, inside tmp_path or in memory.
"""

from __future__ import annotations

import io
import json
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from cnnviz_widgets.engine.core import images
from cnnviz_widgets.engine.core.images import BadImage, as_pil, image_to_array, load_image
from cnnviz_widgets.engine.zoo import samples
from cnnviz_widgets.engine.zoo.samples import sample_image, sample_images, sample_info, sample_names


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def _jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return sample_image("cat")


# ---------------------------------------------------------------------------
# not an image / nothing given
# ---------------------------------------------------------------------------


def test_text_file_is_not_an_image(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("These are my lecture notes.\nNot a picture.\n")
    with pytest.raises(BadImage) as e:
        load_image(p)
    msg = str(e.value)
    assert "'notes.txt'" in msg
    assert "not an image" in msg
    assert "text" in msg


def test_random_bytes_are_not_an_image():
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(BadImage, match=r"'noise.bin' is not an image Pillow can read"):
        load_image(data, name="noise.bin")


def test_pdf_is_not_an_image_with_hint():
    data = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n"
    with pytest.raises(BadImage, match=r"'slides.pdf' is not an image.*PDF"):
        load_image(data, name="slides.pdf")


def test_bad_image_is_a_value_error():
    assert issubclass(BadImage, ValueError)


@pytest.mark.parametrize("empty", [None, b"", bytearray(), io.BytesIO(b"")])
def test_nothing_given(empty):
    with pytest.raises(BadImage, match=r"(?i)no file was given"):
        load_image(empty)


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(BadImage, match=r"'ghost.png' was not found"):
        load_image(tmp_path / "ghost.png")
    with pytest.raises(BadImage, match=r"is a folder"):
        load_image(tmp_path)


def test_wrong_source_type_is_type_error():
    with pytest.raises(TypeError, match="path, bytes"):
        load_image(12345)


def test_text_mode_file_object(tmp_path, photo):
    p = tmp_path / "cat.png"
    p.write_bytes(_png_bytes(photo))
    with open(p, encoding="latin-1") as f, pytest.raises(BadImage, match=r"'cat.png'.*binary"):
        load_image(f)


# ---------------------------------------------------------------------------
# truncated / damaged
# ---------------------------------------------------------------------------


def test_truncated_jpeg(tmp_path, photo):
    data = _jpeg_bytes(photo)
    p = tmp_path / "half.jpg"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImage) as e:
        load_image(p)
    assert "'half.jpg'" in str(e.value)
    assert "truncated" in str(e.value)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_png(photo):
    data = _png_bytes(photo)
    with pytest.raises(BadImage, match=r"'half.png' is truncated"):
        load_image(data[: len(data) // 2], name="half.png")


def test_damaged_png_data():
    # A valid PNG whose compressed pixel data is then overwritten with garbage.
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = bytearray(_png_bytes(img))
    i = data.index(b"IDAT") + 4
    data[i + 10 : i + 400] = bytes(390)
    with pytest.raises(BadImage, match=r"'broken.png' is (damaged|truncated)"):
        load_image(bytes(data), name="broken.png")


# ---------------------------------------------------------------------------
# too large / too small
# ---------------------------------------------------------------------------


def _bomb_png(w: int = 20000, h: int = 20000) -> bytes:
    """A real, decodable 1-bit PNG of w x h black pixels that compresses to a few kB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            len(body).to_bytes(4, "big")
            + kind
            + body
            + zlib.crc32(kind + body).to_bytes(4, "big")
        )

    row = b"\x00" + bytes((w + 7) // 8)  # filter byte + packed bits
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    idat = zlib.compress(row * h, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = _bomb_png()
    assert len(data) < 100_000  # tiny file, 400 megapixels
    return data


def test_bomb_refused_from_header_without_decoding(bomb, monkeypatch):
    def no_decoding(self, *a, **k):
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(BadImage) as e:
        load_image(bomb, name="bomb.png")
    msg = str(e.value)
    assert "'bomb.png' is too large" in msg
    assert "20000 x 20000" in msg
    assert f"limit {images.DEFAULT_MAX_PIXELS:,}" in msg


def test_bomb_refused_by_pillow_guard_without_our_limit(bomb, monkeypatch):
    monkeypatch.setattr(
        ImageFile.ImageFile, "load", lambda self, *a, **k: pytest.fail("decoded")
    )
    assert Image.MAX_IMAGE_PIXELS is not None
    with pytest.raises(BadImage) as e:
        load_image(bomb, name="bomb.png", max_pixels=None)
    assert "20000 x 20000" in str(e.value)
    assert f"limit {Image.MAX_IMAGE_PIXELS:,}" in str(e.value)
    assert Image.MAX_IMAGE_PIXELS is not None  # the guard is still on


def test_pillow_warning_zone_is_an_error(monkeypatch):
    # Between MAX_IMAGE_PIXELS and 2x, Pillow only warns; load_image must refuse.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)
    data = _png_bytes(Image.new("RGB", (100, 60)))  # 6000 pixels: warning zone
    with pytest.raises(BadImage, match=r"too large \(100 x 60 pixels.*limit 5,000"):
        load_image(data, name="big.png", max_pixels=None)


def test_max_pixels_limit():
    data = _png_bytes(Image.new("RGB", (100, 100)))
    with pytest.raises(BadImage, match=r"too large \(100 x 100 pixels.*limit 9,999"):
        load_image(data, max_pixels=9_999)
    assert load_image(data, max_pixels=10_000).size == (100, 100)


def test_too_small():
    data = _png_bytes(Image.new("RGB", (8, 8), "red"))
    with pytest.raises(BadImage) as e:
        load_image(data, name="tiny.png")
    msg = str(e.value)
    assert "'tiny.png' is too small" in msg and "8 x 8" in msg and "32 x 32" in msg
    # one side too small is enough
    with pytest.raises(BadImage, match="200 x 20"):
        load_image(_png_bytes(Image.new("RGB", (200, 20))))
    assert load_image(data, min_size=8).size == (8, 8)


# ---------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------


def test_plain_rgb_has_no_note(photo):
    img = load_image(_png_bytes(photo))
    assert img.mode == "RGB"
    assert "cnnviz_note" not in img.info
    assert np.array_equal(np.asarray(img), np.asarray(photo))


def test_animated_gif_uses_first_frame(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (40, 40), c) for c in colours]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(p) as check:
        assert check.n_frames == 3
    img = load_image(p)
    assert img.mode == "RGB"
    assert img.getpixel((20, 20)) == (255, 0, 0)
    assert img.info["cnnviz_note"] == "animated image: using the first of 3 frames"


def test_animated_png_uses_first_frame():
    frames = [Image.new("RGB", (40, 40), c) for c in [(0, 0, 255), (255, 255, 0)]]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:])
    img = load_image(buf.getvalue())
    assert img.getpixel((5, 5)) == (0, 0, 255)
    assert "first of 2 frames" in img.info["cnnviz_note"]


def test_16bit_gradient_scaled_not_clipped():
    grad = (np.arange(256, dtype=np.uint32) * 257).astype(np.uint16)  # 0..65535
    arr = np.tile(grad, (40, 1))
    src = Image.fromarray(arr)
    assert src.mode.startswith("I;16")
    img = load_image(_png_bytes(src), name="scan16.png")
    a = np.asarray(img)
    assert img.mode == "RGB"
    assert np.array_equal(a[0, :, 0], np.arange(256))  # exact 0..255, not clipped at 255
    assert np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2])
    assert "16-bit" in img.info["cnnviz_note"]


def test_16bit_dark_image_stays_dark():
    arr = np.full((40, 40), 1000, dtype=np.uint16)
    arr[0, 0] = 0
    img = load_image(_png_bytes(Image.fromarray(arr)))
    assert int(np.asarray(img).max()) == round(1000 * 255 / 65535)  # 4, not 255


def test_float_tiff_range_stretched(tmp_path):
    arr = np.linspace(-10.0, 1000.0, 64 * 64, dtype=np.float32).reshape(64, 64)
    p = tmp_path / "depth.tif"
    Image.fromarray(arr, "F").save(p)
    a = np.asarray(load_image(p))
    assert a.min() == 0 and a.max() == 255
    assert 120 <= a[32, 0, 0] <= 135  # the middle of the range lands mid-grey


def test_cmyk_jpeg_becomes_rgb():
    src = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # pure red ink
    img = load_image(_jpeg_bytes(src), name="print.jpg")
    assert img.mode == "RGB"
    r, g, b = img.getpixel((32, 32))
    assert r > 230 and g < 25 and b < 25
    assert "CMYK" in img.info["cnnviz_note"]


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_becomes_rgb(mode):
    arr = np.zeros((40, 40), np.uint8)
    arr[:, 20:] = 255
    src = Image.fromarray(arr).convert(mode)
    img = load_image(_png_bytes(src))
    a = np.asarray(img)
    assert img.mode == "RGB" and a.shape == (40, 40, 3)
    assert a[0, 0].tolist() == [0, 0, 0] and a[0, 39].tolist() == [255, 255, 255]
    assert "grayscale" in img.info["cnnviz_note"]


def test_rgba_composited_over_white():
    arr = np.zeros((40, 40, 4), np.uint8)
    arr[:, 20:] = (0, 0, 255, 255)  # opaque blue on the right
    arr[:, :20] = (0, 0, 0, 0)  # fully transparent (black) on the left
    arr[0, 0] = (0, 0, 0, 128)  # half-transparent black
    img = load_image(_png_bytes(Image.fromarray(arr, "RGBA")), name="logo.png")
    assert img.mode == "RGB"
    assert img.getpixel((5, 5)) == (255, 255, 255)
    assert img.getpixel((30, 5)) == (0, 0, 255)
    assert 120 <= img.getpixel((0, 0))[0] <= 135
    assert "white" in img.info["cnnviz_note"]


def test_opaque_rgba_has_no_white_note():
    img = load_image(_png_bytes(Image.new("RGBA", (40, 40), (10, 20, 30, 255))))
    assert img.getpixel((0, 0)) == (10, 20, 30)
    assert "white" not in img.info.get("cnnviz_note", "")


def test_palette_with_transparency_and_la():
    p = Image.new("P", (40, 40), 0)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    p.paste(1, (20, 0, 40, 40))
    buf = io.BytesIO()
    p.save(buf, "GIF", transparency=0)
    img = load_image(buf.getvalue())
    assert img.getpixel((5, 5)) == (255, 255, 255)
    assert img.getpixel((30, 5)) == (255, 0, 0)

    la = Image.new("LA", (40, 40), (0, 0))
    img = load_image(_png_bytes(la))
    assert img.getpixel((0, 0)) == (255, 255, 255)


def test_exif_rotated_jpeg(tmp_path):
    arr = np.zeros((40, 60, 3), np.uint8)  # stored 60 wide, 40 tall
    arr[:10, :10] = (255, 0, 0)  # red marker in the stored top-left corner
    src = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    p = tmp_path / "phone.jpg"
    src.save(p, "JPEG", quality=95, exif=exif.tobytes())
    img = load_image(p)
    assert img.size == (40, 60)
    r, g, b = img.getpixel((35, 4))  # the marker is now in the top-right corner
    assert r > 200 and g < 60 and b < 60
    assert img.getpixel((4, 4))[0] < 60
    assert "EXIF" in img.info["cnnviz_note"]


# ---------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------


def test_path_bytes_and_file_objects_agree(tmp_path, photo):
    data = _png_bytes(photo)
    p = tmp_path / "cat.png"
    p.write_bytes(data)
    ref = np.asarray(load_image(p))
    assert ref.shape == (300, 451, 3)
    for src in (str(p), data, bytearray(data), memoryview(data), io.BytesIO(data)):
        assert np.array_equal(np.asarray(load_image(src)), ref), type(src)
    with open(p, "rb") as f:
        img = load_image(f)
    assert np.array_equal(np.asarray(img), ref)
    assert img.info["cnnviz_name"] == "cat.png"  # the name comes from the file object
    upload = {"name": "upload.png", "type": "image/png", "content": memoryview(data)}
    img = load_image(upload)  # one ipywidgets FileUpload entry
    assert np.array_equal(np.asarray(img), ref)
    assert img.info["cnnviz_name"] == "upload.png"
    with pytest.raises(BadImage, match="'empty.png' is empty"):
        load_image({"name": "empty.png", "content": b""})


def test_result_is_detached_from_the_file(tmp_path, photo):
    p = tmp_path / "cat.jpg"
    p.write_bytes(_jpeg_bytes(photo))
    img = load_image(p)
    p.unlink()
    assert type(img) is Image.Image  # a plain in-memory image, not an open ImageFile
    assert img.mode == "RGB"
    assert np.asarray(img).shape == (300, 451, 3)
    img.putpixel((0, 0), (1, 2, 3))  # writable
    assert img.getpixel((0, 0)) == (1, 2, 3)


def test_guards_are_left_on(bomb):
    with pytest.raises(BadImage):
        load_image(bomb)
    assert Image.MAX_IMAGE_PIXELS is not None
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# ---------------------------------------------------------------------------
# as_pil / image_to_array
# ---------------------------------------------------------------------------


def test_as_pil_from_arrays(photo):
    ref = np.asarray(photo)
    assert np.array_equal(np.asarray(as_pil(ref)), ref)
    as_float = ref.astype(np.float32) / 255.0
    assert np.array_equal(np.asarray(as_pil(as_float)), ref)
    assert np.array_equal(np.asarray(as_pil(np.moveaxis(as_float, -1, 0))), ref)  # CHW
    gray = as_pil(np.full((40, 50), 7, np.uint8))
    assert gray.mode == "RGB" and gray.size == (50, 40) and gray.getpixel((0, 0)) == (7, 7, 7)


def test_as_pil_from_tensors(photo):
    torch = pytest.importorskip("torch")
    ref = np.asarray(photo)
    t = torch.from_numpy(ref.copy()).permute(2, 0, 1).float() / 255.0
    assert np.array_equal(np.asarray(as_pil(t)), ref)
    assert np.array_equal(np.asarray(as_pil(t[None])), ref)
    assert np.array_equal(np.asarray(as_pil(t.requires_grad_())), ref)
    u8 = torch.from_numpy(ref.copy()).permute(2, 0, 1)
    assert np.array_equal(np.asarray(as_pil(u8)), ref)
    with pytest.raises(BadImage, match="batch of 2"):
        as_pil(torch.rand(2, 3, 32, 32))
    with pytest.raises(BadImage, match=r"\[0, 1\]"):
        as_pil(torch.randn(3, 32, 32) * 3)  # a normalised tensor


def test_as_pil_rejects_bad_input():
    with pytest.raises(BadImage, match=r"\[0, 1\]"):
        as_pil(np.full((32, 32, 3), 2.5))
    with pytest.raises(BadImage, match="NaN"):
        as_pil(np.full((32, 32, 3), np.nan))
    with pytest.raises(BadImage, match="shape"):
        as_pil(np.zeros((32, 32, 5), np.uint8))
    with pytest.raises(BadImage, match="0..255"):
        as_pil(np.full((32, 32, 3), 300, np.int32))
    with pytest.raises(TypeError, match="PIL image, a numpy array or a torch tensor"):
        as_pil("cat.jpg")


def test_as_pil_converts_pil_modes(photo):
    assert as_pil(photo) is photo
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    assert as_pil(rgba).getpixel((0, 0)) == (255, 255, 255)
    assert as_pil(Image.new("L", (40, 40), 9)).getpixel((0, 0)) == (9, 9, 9)


def test_image_to_array(photo):
    a = image_to_array(photo)
    assert a.dtype == np.uint8 and a.shape == (300, 451, 3)
    assert a.flags.writeable
    before = np.asarray(photo).copy()
    a[:] = 0  # a copy: writing to it does not touch the image
    assert np.array_equal(np.asarray(photo), before)
    assert image_to_array(Image.new("L", (40, 32), 200)).shape == (32, 40, 3)


# ---------------------------------------------------------------------------
# bundled samples
# ---------------------------------------------------------------------------


def test_sample_names():
    names = sample_names()
    assert {"cat", "coffee", "astronaut", "rocket"} <= set(names)
    assert len(names) == len(set(names))


def test_samples_load_as_small_rgb_images():
    imgs = sample_images()
    assert list(imgs) == sample_names()
    for name, img in imgs.items():
        assert img.mode == "RGB", name
        assert max(img.size) <= 512 and min(img.size) >= 224, (name, img.size)
        assert np.asarray(img).std() > 20, name  # a real photo, not a blank
    assert imgs["cat"].size == (451, 300)
    assert imgs["astronaut"].size == (512, 512)


def test_sample_image_is_a_fresh_copy():
    a = sample_image("cat")
    a.putpixel((0, 0), (1, 2, 3))
    assert sample_image("cat").getpixel((0, 0)) != (1, 2, 3)


def test_unknown_sample_lists_the_names():
    with pytest.raises(ValueError) as e:
        sample_image("dog")
    assert isinstance(e.value, KeyError)
    msg = str(e.value)
    assert "'dog'" in msg
    for name in sample_names():
        assert name in msg
    with pytest.raises(KeyError):
        sample_info("dog")


def test_sample_provenance_is_complete():
    manifest = json.loads((samples.SAMPLES_DIR / "samples.json").read_text())
    readme = (samples.SAMPLES_DIR / "README.md").read_text()
    files = {p.name for p in samples.SAMPLES_DIR.iterdir()}
    assert {e["name"] for e in manifest["samples"]} == set(sample_names())
    for name in sample_names():
        info = sample_info(name)
        assert info["title"] and info["source"], name
        assert "CC0" in info["licence"] or "Public domain" in info["licence"], name
        assert isinstance(info["expected"], list), name
        assert info["file"] in files, name
        assert f"`{info['file']}`" in readme, name
    assert "tabby" in sample_info("cat")["expected"]
    assert "espresso" in sample_info("coffee")["expected"]
    assert sample_info("astronaut")["expected"] == []
    # no photo ships without a manifest entry
    photos = {f for f in files if f.endswith((".jpg", ".png"))}
    assert photos == {sample_info(n)["file"] for n in sample_names()}
