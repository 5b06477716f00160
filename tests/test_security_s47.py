"""Security review (s47): what the fetchers and the server do with addresses they cannot read."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from medimg.server import ServerConfig, Worker, create_app
from medimg.sources import net
from test_openapi_s33 import classifier  # noqa: F401 (a fixture)

# host names the system resolver's IDNA codec refuses (UnicodeError, not OSError): an empty part, one over 63
BAD_NAMES = ["a..example", ".a.example", "a" * 64 + ".example"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_host_name_with_an_empty_or_over_long_part_is_a_fetch_error(name):
    with pytest.raises(net.FetchError, match="not a host name"):
        net.check_url(f"http://{name}/x.png", allow_private=False)


def test_the_api_answers_such_a_url_with_its_error_record_not_a_500(classifier):  # noqa: F811
    """`a..example` (a typo) made /api/classify-url fail with 500: the resolver's UnicodeError went through."""
    cfg = ServerConfig()
    client = TestClient(create_app(cfg, Worker(cfg, classifier), ui=False), raise_server_exceptions=False)
    for name in BAD_NAMES[:2]:
        r = client.post("/api/classify-url", json={"url": f"http://{name}/x.png"})
        assert r.status_code == 200, r.text
        (record,) = r.json()["results"]
        assert "not a host name" in record["error"], record


def test_an_over_long_url_is_named_cut_in_its_error():
    """httpx refuses a URL past 65,536 characters; the error held all of it (a page of 1,000 such images: 70 MB
    of errors, each beside its locator, which has the URL already)."""
    url = "http://127.0.0.1:9/a.png?" + "q" * 70_000
    with pytest.raises(net.FetchError) as caught:
        net.check_url(url, allow_private=False)
    text = str(caught.value)
    assert len(text) < 400 and "70,025 characters" in text and "URL too long" in text, text[:500]
    with pytest.raises(net.FetchError) as caught:
        net.fetch(url)
    assert len(str(caught.value)) < 400 and "URL too long" in str(caught.value), str(caught.value)[:500]
