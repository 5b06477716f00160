"""Security review (s44): holes found around the private-address guard, the fetchers and the server."""

from __future__ import annotations

import pytest

from medimg.sources import ItemError, Limits, net, open_input


@pytest.mark.parametrize("address", ["fec0::1", "fec0:0:0:ffff::1", "[feff::1]"])
def test_site_local_ipv6_addresses_are_refused(address):
    """fec0::/10 (site-local) is deprecated but still routed inside networks, and Python's ipaddress takes it
    for a global address: the guard let it through."""
    assert net.blocked_reason(address) == "site-local"


def test_a_url_at_a_site_local_address_is_refused_before_any_connection():
    with pytest.raises(net.BlockedAddress, match="site-local"):
        net.fetch("http://[fec0::1]:9/x.png", Limits(connect_timeout=1, read_timeout=1, total_timeout=2))
    items = list(open_input("http://[fec0::1]:9/x.png", Limits(connect_timeout=1, read_timeout=1, total_timeout=2)))
    assert len(items) == 1 and isinstance(items[0], ItemError) and "site-local" in items[0].error, items
