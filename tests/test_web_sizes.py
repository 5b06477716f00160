"""One picture offered at several sizes or in several encodings under different URLs (a news hero as a WebP
<picture> and a JPEG og:image, an og:image and its thumbnail, a figure's thumbnail and its "Download figure" link,
a TIFF beside its JPEG) is one image: the later ones are notes naming the first. Different pictures that look
alike (adjacent slices of a stack, two shots of one scene) stay images of their own."""

from __future__ import annotations

import glob
import io
import os

import numpy as np
import pytest
from PIL import Image, ImageFilter
from test_web_duplicates import notes, run
from webserver import WebServer

from medimg.sources import ImageItem, Limits, browser, open_input

OPEN = {"allow_private": True, "connect_timeout": 2, "read_timeout": 2, "total_timeout": 5}  # loopback: the opt-in
RENDER = {**OPEN, "render": True, "connect_timeout": 5, "read_timeout": 5, "total_timeout": 20}
UNAVAILABLE = browser.available()
requires_browser = pytest.mark.skipif(UNAVAILABLE is not None, reason=f"skipped: {UNAVAILABLE}")


def scene(seed: int, size=(1200, 675), shift: float = 0.0) -> Image.Image:
    """A photo-like picture: a sky-to-ground gradient and soft coloured blobs, with grain. `shift` moves the blobs
    (a second shot of the same scene: 0.02 is about 1.9 grey levels from the first at the print's 16×16)."""
    rng = np.random.default_rng(seed)
    w, h = 600, round(600 * size[1] / size[0])
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    rgb = np.stack([0.3 + 0.5 * y, 0.5 + 0.2 * y, 0.9 - 0.6 * y], -1)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0.2, 1), rng.uniform(0.04, 0.18)
        blob = np.exp(-(((x - cx - shift) / r) ** 2 + ((y - cy) / r) ** 2))[..., None]
        rgb = rgb * (1 - blob) + rng.uniform(0, 1, 3) * blob
    rgb += rng.normal(0, 0.03, rgb.shape)
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).resize(size, Image.LANCZOS)


def phantom(n: int = 8, side: int = 128) -> list[Image.Image]:
    """Axial slices of a chest-CT-like volume: body, lungs that grow, vessels that drift from slice to slice, the
    spine, noise. Adjacent slices are 2.8-3.3 grey levels apart at 16×16 (real 2.2 mm EPI slices: 2.2-2.7)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:side, 0:side] / side - 0.5
    vessels = [(rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2), rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03),
                rng.uniform(0.01, 0.03)) for _ in range(40)]
    out = []
    for z in range(n):
        lung_r = 0.22 + 0.01 * z
        lungs = (((x - 0.18) / 0.14) ** 2 + (y / lung_r) ** 2 < 1) | (((x + 0.18) / 0.14) ** 2 + (y / lung_r) ** 2 < 1)
        img = ((x / 0.45) ** 2 + (y / 0.35) ** 2 < 1) * 0.55 - 0.45 * lungs
        for vx, vy, dx, dy, r in vessels:
            img = img + 0.4 * (((x - vx - dx * z) ** 2 + (y - vy - dy * z) ** 2) < r * r) * lungs
        img = img + 0.4 * ((x ** 2 + (y - 0.25) ** 2) < (0.05 + 0.003 * z) ** 2) + rng.normal(0, 0.03, img.shape)
        slice8 = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.7))
        out.append(slice8.resize((512, 512), Image.BICUBIC))
    return out


def encode(img: Image.Image, fmt: str = "JPEG", size=None, quality: int = 85) -> bytes:
    if size:
        img = img.resize(size, Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": quality} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


def images(items) -> list[str]:
    return [i.locator for i in items if isinstance(i, ImageItem)]


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


def test_a_news_hero_as_a_webp_picture_and_a_jpeg_og_image_is_one_image(srv):
    hero = scene(1)
    srv.add("/img/hero-1200.jpg", encode(hero), "image/jpeg")
    srv.add("/img/hero-1200.webp", encode(hero, "WEBP", quality=80), "image/webp")
    srv.add("/img/hero-800.jpg", encode(hero, size=(800, 450)), "image/jpeg")
    srv.add("/img/other.jpg", encode(scene(2)), "image/jpeg")
    srv.add("/news.html", '<html><head><meta property="og:image" content="/img/hero-1200.jpg"></head><body>'
                          '<picture><source type="image/webp" srcset="/img/hero-1200.webp 1200w">'
                          '<img src="/img/hero-800.jpg" alt="A radiologist"></picture>'
                          '<img src="/img/other.jpg" alt="Nurses"></body></html>')
    u = srv.url
    items = run(u("/news.html"))
    assert images(items) == [f"og:image #1 {u('/img/hero-1200.jpg')}", f"img #3 {u('/img/other.jpg')}"]
    assert notes(items) == [(f"picture #2 {u('/img/hero-1200.webp')}",
                             "same picture as og:image #1 (another encoding: WEBP, not JPEG)")]


def test_a_picture_saved_again_in_its_own_format_and_size_names_neither_as_another_encoding(srv):
    """The og:image and the <img> are one JPEG saved at two qualities: the note read "another encoding: JPEG, not
    JPEG"."""
    hero = scene(7)
    srv.add("/og.jpg", encode(hero, quality=90), "image/jpeg")
    srv.add("/hero.jpg", encode(hero, quality=70), "image/jpeg")
    u = srv.url
    items = run(srv.add("/p.html", '<html><head><meta property="og:image" content="/og.jpg"></head><body>'
                                   '<img src="/hero.jpg"></body></html>'))
    assert images(items) == [f"og:image #1 {u('/og.jpg')}"]
    assert notes(items) == [(f"img #2 {u('/hero.jpg')}", "same picture as og:image #1 (other bytes: JPEG at the same "
                                                         "size)")]


def test_an_og_image_and_its_thumbnail_are_one_image(srv):
    xray = scene(3, (800, 600))
    srv.add("/big/study2.jpeg", encode(xray), "image/jpeg")
    srv.add("/thumb/study2.jpeg", encode(xray, size=(96, 72), quality=75), "image/jpeg")
    srv.add("/card/study2.jpeg", encode(xray, size=(400, 300)), "image/jpeg")
    srv.add("/case.html", '<html><head><meta property="og:image" content="/big/study2.jpeg">'
                          '<meta name="twitter:image" content="/card/study2.jpeg"></head><body>'
                          '<a href="/case/studies/2"><img src="/thumb/study2.jpeg" alt="Study 2"></a></body></html>')
    u = srv.url
    items = run(u("/case.html"))
    assert images(items) == [f"og:image #1 {u('/big/study2.jpeg')}"]
    assert notes(items) == [(f"twitter:image #2 {u('/card/study2.jpeg')}",
                             "same picture as og:image #1 (another size: 400x300, not 800x600)"),
                            (f"img #3 {u('/thumb/study2.jpeg')}",
                             "same picture as og:image #1 (another size: 96x72, not 800x600)")]


def test_a_figure_thumbnail_and_its_download_links_are_one_image(srv):
    """A PMC classic figure: a thumbnail linked to the figure's page, "Download figure" to the full JPEG, and a
    TIFF of it; a second figure stays an image of its own."""
    fig2, fig3 = scene(4, (640, 480)), scene(5, (640, 480))
    srv.add("/thumbs/fig2_thumb.jpg", encode(fig2, size=(160, 120), quality=75), "image/jpeg")
    srv.add("/bin/fig2.jpg", encode(fig2), "image/jpeg")
    srv.add("/bin/fig2.tif", encode(fig2, "TIFF"), "image/tiff")
    srv.add("/bin/fig3.jpg", encode(fig3), "image/jpeg")
    srv.add("/figure/F2/", "<html><body><p>Figure 2</p></body></html>")
    srv.add("/article.html", '<html><body><figure><a href="/figure/F2/"><img src="/thumbs/fig2_thumb.jpg" '
                             'alt="Figure 2"></a><a href="/bin/fig2.jpg?download=1">Download figure</a> '
                             '<a href="/bin/fig2.tif">Download high-res image (TIF)</a></figure>'
                             '<figure><img src="/bin/fig3.jpg" alt="Figure 3"></figure></body></html>')
    u = srv.url
    items = run(u("/article.html"))
    assert images(items) == [f"img #1 {u('/thumbs/fig2_thumb.jpg')}", f"img #4 {u('/bin/fig3.jpg')}"]
    assert notes(items) == [
        (f"a #2 {u('/bin/fig2.jpg?download=1')}", "same picture as img #1 (another size: 640x480, not 160x120)"),
        (f"a #3 {u('/bin/fig2.tif')}", "same picture as img #1 (another size: 640x480, not 160x120)")]


def test_adjacent_slices_of_a_stack_stay_images_of_their_own(srv):
    """A stack viewer's five slices, an og:image of the next slice (never shown) and download links to two of the
    shown ones: the slices and the og:image stay images; each link is a note naming its own slice, not a
    neighbour."""
    slices = phantom(7)
    for z, img in enumerate(slices):
        srv.add(f"/stack/ct_{z}.jpeg", encode(img), "image/jpeg")
        srv.add(f"/full/ct_{z}.png", encode(img, "PNG", size=(1024, 1024)), "image/png")
    page = ('<html><head><meta property="og:image" content="/stack/ct_6.jpeg"></head><body>'
            + "".join(f'<img src="/stack/ct_{z}.jpeg">' for z in range(1, 6))
            + '<a href="/full/ct_3.png">slice 3</a><a href="/full/ct_5.png">slice 5</a></body></html>')
    srv.add("/stack.html", page)
    u = srv.url
    items = run(u("/stack.html"))
    assert images(items) == [f"og:image #1 {u('/stack/ct_6.jpeg')}"] + [
        f"img #{z + 1} {u(f'/stack/ct_{z}.jpeg')}" for z in range(1, 6)]
    assert notes(items) == [(f"a #7 {u('/full/ct_3.png')}", "same picture as img #4 (another size: 1024x1024, "
                                                            "not 512x512)"),
                            (f"a #8 {u('/full/ct_5.png')}", "same picture as img #6 (another size: 1024x1024, "
                                                            "not 512x512)")]


def _epi_slices() -> list[Image.Image]:
    """Real adjacent slices (2.2 mm apart): nibabel's example EPI volume, shipped with its tests."""
    nibabel = pytest.importorskip("nibabel")
    found = glob.glob(os.path.join(os.path.dirname(nibabel.__file__), "tests", "data", "example4d.nii.gz"))
    if not found:
        pytest.skip("nibabel's example4d.nii.gz is not installed")
    volume = nibabel.load(found[0]).get_fdata()[..., 0]
    lo, hi = np.percentile(volume, 1), np.percentile(volume, 99.5)
    out = []
    for z in range(8, 14):
        grey = (np.clip((np.rot90(volume[:, :, z]) - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
        out.append(Image.fromarray(grey).resize((384, 512), Image.BICUBIC))
    return out


def test_real_adjacent_mri_slices_and_an_og_image_of_the_next_stay_apart(srv):
    slices = _epi_slices()
    for z, img in enumerate(slices):
        srv.add(f"/s{z}.jpg", encode(img), "image/jpeg")
    srv.add("/og.jpg", encode(slices[5], size=(600, 800)), "image/jpeg")
    srv.add("/thumb4.jpg", encode(slices[4], size=(96, 128), quality=75), "image/jpeg")
    srv.add("/mri.html", '<html><head><meta property="og:image" content="/og.jpg"></head><body>'
                         + "".join(f'<img src="/s{z}.jpg">' for z in range(5))
                         + '<a href="/thumb4.jpg">small</a></body></html>')
    u = srv.url
    items = run(u("/mri.html"))
    assert images(items) == [f"og:image #1 {u('/og.jpg')}"] + [f"img #{z + 2} {u(f'/s{z}.jpg')}" for z in range(5)]
    assert notes(items) == [(f"a #7 {u('/thumb4.jpg')}", "same picture as img #6 (another size: 96x128, not 384x512)")]


def test_two_shots_of_one_scene_stay_two_images(srv):
    """Before/after, or a second shot: as og:image and <img>, and the second shot's own link at another size."""
    first, second = scene(6), scene(6, shift=0.02)
    srv.add("/a.jpg", encode(first), "image/jpeg")
    srv.add("/b.jpg", encode(second, size=(800, 450)), "image/jpeg")
    srv.add("/b-large.jpg", encode(second), "image/jpeg")
    srv.add("/shots.html", '<html><head><meta property="og:image" content="/a.jpg"></head><body>'
                           '<img src="/b.jpg" alt="after"><a href="/b-large.jpg">full size</a></body></html>')
    u = srv.url
    items = run(u("/shots.html"))
    assert images(items) == [f"og:image #1 {u('/a.jpg')}", f"img #2 {u('/b.jpg')}"]
    assert notes(items) == [(f"a #3 {u('/b-large.jpg')}", "same picture as img #2 (another size: 1200x675, "
                                                          "not 800x450)")]


def test_two_imgs_or_two_links_are_never_one_picture_by_their_pixels(srv):
    """Two frames of a cine loop a moment apart are as alike as a picture and its re-encoding (0.2 grey levels
    at 16×16): as two <img>s, or two links of a listing, they stay two images. Only a page's second reference to
    a picture (og:image, a link beside an <img>, a background) is compared by its pixels."""
    first, second = scene(10), scene(10, shift=0.002)
    srv.add("/f1.jpg", encode(first), "image/jpeg")
    srv.add("/f2.jpg", encode(second, "WEBP", size=(800, 450)), "image/webp")
    srv.add("/f1-small.png", encode(first, "PNG", size=(600, 338)), "image/png")
    srv.add("/f2.png", encode(second, "PNG"), "image/png")
    srv.add("/frames.html", '<img src="/f1.jpg"><img src="/f2.jpg"><a href="/f2.png">frame 2, full size</a>')
    srv.add("/listing.html", '<a href="/f1-small.png">f1-small.png</a> <a href="/f2.png">f2.png</a>')
    srv.add("/card.html", '<meta property="og:image" content="/f1.jpg"><img src="/f1-small.png">')
    u = srv.url
    items = run(u("/frames.html"))
    assert images(items) == [f"img #1 {u('/f1.jpg')}", f"img #2 {u('/f2.jpg')}"]
    assert notes(items) == [(f"a #3 {u('/f2.png')}",  # the closest of the two, though both are alike
                             "same picture as img #2 (another size: 1200x675, not 800x450)")]
    assert images(run(u("/listing.html"))) == [f"a #1 {u('/f1-small.png')}", f"a #2 {u('/f2.png')}"]
    items = run(u("/card.html"))  # the same picture, as a second reference: one image
    assert images(items) == [f"og:image #1 {u('/f1.jpg')}"]
    assert notes(items) == [(f"img #2 {u('/f1-small.png')}", "same picture as og:image #1 (another size: 600x338, "
                                                             "not 1200x675)")]


def dim_field(seed: int) -> Image.Image:
    """A dark fluorescence-like field: a few faint cells on black (a spread of about 1 grey level at 16×16)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((480, 640))
    y, x = np.mgrid[0:480, 0:640]
    for _ in range(25):
        cx, cy = rng.uniform(0, 640), rng.uniform(0, 480)
        img += 20 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 60)
    return Image.fromarray(np.clip(img + rng.normal(4, 1, img.shape), 0, 255).astype(np.uint8))


def test_different_low_contrast_pictures_and_other_shapes_stay_apart(srv):
    """Two dim fields of different cells differ by under one grey level on average, yet are two pictures: a flat
    picture needs a match close to its own spread. A thumbnail squashed to another shape is not matched either (a
    square crop of it is: test_web_crops_s34.py)."""
    srv.add("/field1.png", encode(dim_field(1), "PNG"), "image/png")
    srv.add("/field2.jpg", encode(dim_field(2), size=(320, 240)), "image/jpeg")
    wide = scene(11, (800, 600))
    srv.add("/wide.jpg", encode(wide), "image/jpeg")
    srv.add("/square.jpg", encode(wide.crop((100, 0, 700, 600)), size=(96, 96)), "image/jpeg")
    srv.add("/squashed.jpg", encode(wide, size=(96, 90)), "image/jpeg")
    srv.add("/page.html", '<meta property="og:image" content="/field1.png"><img src="/field2.jpg">'
                          '<a href="/wide.jpg">full</a><img src="/square.jpg"><img src="/squashed.jpg">')
    u = srv.url
    items = run(u("/page.html"))
    assert len(images(items)) == 4
    assert notes(items) == [(f"img #4 {u('/square.jpg')}", "same picture as a #3 (a crop of it: 96x96, its centre of "
                                                           "800x600)")]


def test_a_saved_page_gives_a_picture_and_its_other_size_once(tmp_path):
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    hero = scene(8, (1000, 750))
    (site / "img" / "hero.jpg").write_bytes(encode(hero))
    (site / "img" / "hero_small.webp").write_bytes(encode(hero, "WEBP", size=(200, 150)))
    (site / "page.html").write_text('<html><head><meta property="og:image" content="img/hero.jpg"></head><body>'
                                    '<img src="img/hero_small.webp"></body></html>')
    items = list(open_input(str(site / "page.html"), Limits()))
    assert images(items) == ["og:image #1 img/hero.jpg"]
    assert notes(items) == [("img #2 img/hero_small.webp", "same picture as og:image #1 (another size: 200x150, "
                                                           "not 1000x750)")]


@requires_browser
@pytest.mark.timeout(90)
def test_rendered_the_shown_picture_stays_and_the_og_image_is_a_note(srv):
    hero = scene(9)
    srv.add("/img/hero.webp", encode(hero, "WEBP", size=(800, 450)), "image/webp")
    srv.add("/img/hero-1200.jpg", encode(hero), "image/jpeg")
    srv.add("/news.html", '<html><head><meta property="og:image" content="/img/hero-1200.jpg"></head><body>'
                          '<img src="/img/hero.webp" width="800" height="450"></body></html>')
    u = srv.url
    items = list(open_input(u("/news.html"), Limits(**RENDER)))
    assert images(items) == [f"img #1 {u('/img/hero.webp')}"]
    assert [n for n in notes(items) if "same picture" in n[1]] == [
        (f"og:image #2 {u('/img/hero-1200.jpg')}", "same picture as img #1 (another size: 1200x675, not 800x450)")]
