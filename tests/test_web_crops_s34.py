"""A picture offered cropped to another shape (a square thumbnail of a tall X-ray as og:image, a news site's
1.91:1 `&crop=1` og:image of its hero, a square "top" thumbnail in a link) is the same picture: the later one is a
note naming the first. The crop is compared with the same crop (centre, or top) of the other picture's small grey
copy. Different pictures that look alike (neighbouring slices of a stack) stay images of their own, cropped or
not."""

from __future__ import annotations

import pytest
from test_web_duplicates import notes, run
from test_web_sizes import _epi_slices, encode, images, phantom, scene
from webserver import WebServer

from medimg.sources import ImageItem, prints


@pytest.fixture
def srv():
    with WebServer() as server:
        yield server


def centre(img, aspect):
    """The largest crop of `img` of this shape (width / height), from its middle."""
    w, h = img.size
    if aspect < w / h:
        side = round(h * aspect)
        return img.crop(((w - side) // 2, 0, (w - side) // 2 + side, h))
    side = round(w / aspect)
    return img.crop((0, (h - side) // 2, w, (h - side) // 2 + side))


def test_a_square_og_image_of_a_tall_picture_and_a_news_crop_are_one_picture(srv):
    """Static reading: the og:image (a square crop of a tall picture) comes first and stays the record; the
    tall <img> is its uncropped picture. A news hero shown at 1200x900 with a 1.91:1 `&crop=1` og:image, and a
    square thumbnail of the top of a tall picture in a link, are one picture each too. Other pictures stay."""
    tall, hero, poster, other = scene(21, (800, 1200)), scene(22, (1200, 900)), scene(23, (900, 1350)), scene(24)
    srv.add("/og/square.jpg", encode(centre(tall, 1.0), size=(600, 600)), "image/jpeg")
    srv.add("/img/tall.jpg", encode(tall), "image/jpeg")
    srv.add("/img/hero.jpg", encode(hero), "image/jpeg")
    srv.add("/img/hero.jpg?w=1200&h=630&crop=1", encode(centre(hero, 1200 / 630), size=(1200, 630)), "image/jpeg")
    srv.add("/img/poster.jpg", encode(poster), "image/jpeg")
    srv.add("/thumbs/poster-top.jpg", encode(poster.crop((0, 0, 900, 900)), size=(160, 160), quality=75),
            "image/jpeg")
    srv.add("/img/other.jpg", encode(other), "image/jpeg")
    srv.add("/case.html", '<html><head><meta property="og:image" content="/og/square.jpg"></head><body>'
                          '<img src="/img/tall.jpg"><img src="/img/other.jpg"></body></html>')
    srv.add("/news.html", '<html><head><meta property="og:image" content="/img/hero.jpg?w=1200&h=630&crop=1">'
                          '</head><body><img src="/img/hero.jpg"><img src="/img/poster.jpg">'
                          '<a href="/thumbs/poster-top.jpg">poster</a></body></html>')
    u = srv.url
    items = run(u("/case.html"))
    assert images(items) == [f"og:image #1 {u('/og/square.jpg')}", f"img #3 {u('/img/other.jpg')}"]
    assert notes(items) == [(f"img #2 {u('/img/tall.jpg')}",
                             "same picture as og:image #1 (uncropped: 800x1200, of which og:image #1 shows the "
                             "centre)")]
    items = run(u("/news.html"))
    assert images(items) == [f"og:image #1 {u('/img/hero.jpg?w=1200&h=630&crop=1')}",
                             f"img #3 {u('/img/poster.jpg')}"]
    assert notes(items) == [
        (f"img #2 {u('/img/hero.jpg')}", "same picture as og:image #1 (uncropped: 1200x900, of which og:image #1 "
                                         "shows the centre)"),
        (f"a #4 {u('/thumbs/poster-top.jpg')}", "same picture as img #3 (a crop of it: 160x160, its top of "
                                                "900x1350)")]


def test_cropped_neighbouring_slices_stay_images_of_their_own(srv):
    """Real adjacent MRI slices (2.2 mm apart, 384x512): a square og:image of the slice after the five shown
    stays an image; a square thumbnail of slice 3 in a link is a note naming slice 3, not a neighbour. The same
    with a CT-like stack of square slices and 1.91:1 crops."""
    slices = _epi_slices()
    for z, img in enumerate(slices):
        srv.add(f"/s{z}.jpg", encode(img), "image/jpeg")
    srv.add("/og.jpg", encode(centre(slices[5], 1.0), size=(384, 384)), "image/jpeg")
    srv.add("/sq3.jpg", encode(centre(slices[3], 1.0), size=(128, 128), quality=75), "image/jpeg")
    srv.add("/mri.html", '<html><head><meta property="og:image" content="/og.jpg"></head><body>'
                         + "".join(f'<img src="/s{z}.jpg">' for z in range(5))
                         + '<a href="/sq3.jpg">slice 3</a></body></html>')
    ct = phantom(7)
    for z, img in enumerate(ct):
        srv.add(f"/ct{z}.png", encode(img, "PNG"), "image/png")
        srv.add(f"/wide{z}.jpg", encode(centre(img, 1200 / 630), size=(1200, 630)), "image/jpeg")
    srv.add("/ct.html", '<html><head><meta property="og:image" content="/wide6.jpg"></head><body>'
                        + "".join(f'<img src="/ct{z}.png">' for z in range(1, 6))
                        + '<a href="/wide2.jpg">slice 2</a><a href="/wide4.jpg">slice 4</a></body></html>')
    u = srv.url
    items = run(u("/mri.html"))
    assert images(items) == [f"og:image #1 {u('/og.jpg')}"] + [f"img #{z + 2} {u(f'/s{z}.jpg')}" for z in range(5)]
    assert notes(items) == [(f"a #7 {u('/sq3.jpg')}", "same picture as img #5 (a crop of it: 128x128, its centre "
                                                      "of 384x512)")]
    items = run(u("/ct.html"))
    assert images(items) == [f"og:image #1 {u('/wide6.jpg')}"] + [f"img #{z + 1} {u(f'/ct{z}.png')}"
                                                                   for z in range(1, 6)]
    assert notes(items) == [(f"a #{7 + k} {u(f'/wide{z}.jpg')}", f"same picture as img #{z + 1} (a crop of it: "
                                                                  "1200x630, its centre of 512x512)")
                            for k, z in enumerate((2, 4))]


def test_a_crop_must_keep_half_its_picture_and_two_imgs_are_never_matched(srv):
    """A 1.91:1 band of a portrait picture keeps 39 % of it: too little to be taken for it. A square crop shown
    as an <img> beside its picture's <img> stays two images (two elements, as for any size)."""
    portrait = scene(25, (900, 1200))
    srv.add("/p.jpg", encode(portrait), "image/jpeg")
    srv.add("/band.jpg", encode(centre(portrait, 1200 / 630), size=(1200, 630)), "image/jpeg")
    srv.add("/sq.jpg", encode(centre(portrait, 1.0), size=(300, 300)), "image/jpeg")
    srv.add("/band.html", '<meta property="og:image" content="/band.jpg"><img src="/p.jpg">')
    srv.add("/two.html", '<img src="/p.jpg"><img src="/sq.jpg">')
    u = srv.url
    assert len(images(run(u("/band.html")))) == 2 and prints.CROP_KEEPS > 630 * 900 / (1200 * 1200)
    assert images(run(u("/two.html"))) == [f"img #1 {u('/p.jpg')}", f"img #2 {u('/sq.jpg')}"]


def test_pictures_of_one_shape_are_compared_whole_not_cropped():
    """Two different pictures of one shape (a gallery's photos beside its og:image) are judged by their prints:
    a crop of one to the other's shape would be the whole picture again, so none is worked out (it cost about
    1 ms a pair, 20 % of a 30-photo page's CPU). A shape 1.4 % off (within SAME_SHAPE) still tries its crops."""
    def mark(img):
        return prints.picture_print(ImageItem("p", "", img, "JPEG"))
    a, b = mark(scene(1, (1024, 768))), mark(scene(2, (1024, 768)))
    assert a.likeness(b) is None and b.likeness(a) is None
    assert not a._crops and not b._crops
    c = mark(scene(3, (1010, 768)))
    assert a.likeness(c) is None and (a._crops or c._crops)
