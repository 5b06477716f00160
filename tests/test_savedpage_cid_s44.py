"""MHTML pictures named by Content-ID are read in page order (session 44: they came after every other image, as
`resource #N`, with no `alt`)."""

from test_savedpages_s42 import items, mhtml, picture

from medimg.sources import ImageItem


def test_cid_pictures_are_read_in_their_place_with_their_alt_text():
    html = ('<html><body><img src="CID:chart@01DA" alt="Figure 1"><p>Findings</p>'
            '<div style="background: url(\'cid:bg@01DA\')">x</div>'
            '<img src="Report_files/image001.jpg" alt="scan"><img src="cid:missing@01DA"></body></html>')
    data = mhtml("file:///C:/Users/dr/Report.htm", html,
                 [("<chart@01DA>", "image/png", picture((300, 200), 1, "PNG")),
                  ("<bg@01DA>", "image/jpeg", picture((400, 300), 2)),
                  ("file:///C:/Users/dr/Report_files/image001.jpg", "image/jpeg", picture((256, 200), 3)),
                  ("<extra@01DA>", "image/jpeg", picture((220, 180), 4))], blink=False)
    got = items(data, "Report.mht")
    images = [i for i in got if isinstance(i, ImageItem)]
    assert [i.locator.split(" ", 2)[:2] + [i.locator.split()[-1]] for i in images] == [
        ["img", "#1", "cid:chart@01da"], ["style", "#2", "cid:bg@01da"],
        ["img", "#3", "file:///C:/Users/dr/Report_files/image001.jpg"], ["resource", "#4", "cid:extra@01da"]]  # Content-IDs kept in lower case, as e-mails read them
    assert images[0].metadata["alt"] == "Figure 1"
    assert any("1 image the page names is not in the MHTML file" in i.error for i in got if not isinstance(i, ImageItem))


def test_a_srcset_of_cid_pictures_is_read_in_its_place():
    html = ('<html><body><img srcset="cid:small@x 1x, cid:big@x 2x" src="cid:small@x" alt="MRI"><p>text</p>'
            '<img src="cid:other@x"></body></html>')
    data = mhtml("file:///C:/r.htm", html, [("<small@x>", "image/jpeg", picture((200, 150), 1)),
                                            ("<big@x>", "image/jpeg", picture((400, 300), 1)),
                                            ("<other@x>", "image/jpeg", picture((220, 180), 5))], blink=False)
    images = [i for i in items(data, "r.mht") if isinstance(i, ImageItem)]
    assert [i.locator.split()[1] for i in images] == ["#1", "#2"]  # its other size is no image of its own
    assert images[0].metadata["alt"] == "MRI" and images[1].locator.endswith("cid:other@x")
