"""Session 44 speed review: flat_odf's sniff does not search the tags of XML and HTML that are not OpenDocument."""

from medimg.sources import Blob, flat_odf


class _Refused:
    def search(self, text):  # the tag search tried every `<` of a file's first 16 KB (~0.2 ms a file)
        raise AssertionError("searched a file without the OpenDocument namespace")


def test_plain_xml_is_not_searched(monkeypatch):
    ns = flat_odf._NS.decode()
    flat = (f'<?xml version="1.0"?><office:document xmlns:office="{ns}" '
            'office:mimetype="application/vnd.oasis.opendocument.text"><office:body/></office:document>').encode()
    assert flat_odf.accepts(flat, Blob("a.fodt", flat))  # before the search is taken away: it is one
    monkeypatch.setattr(flat_odf, "_ROOT", _Refused())
    for data in (b'<?xml version="1.0"?><ns:data xmlns:ns="urn:x">' + b"<ns:record>1</ns:record>" * 700 + b"</ns:data>",
                 b"<!DOCTYPE html><html><body>" + b"<p>text</p>" * 1500 + b"</body></html>",
                 b"<svg xmlns='http://www.w3.org/2000/svg'><document>not ODF</document></svg>"):
        assert not flat_odf.accepts(data, Blob("x.xml", data))
