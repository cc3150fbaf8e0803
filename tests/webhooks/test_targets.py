"""The address rules behind webhook URLs, and how a delivery is pinned to a checked address."""

from __future__ import annotations

import asyncio
import ipaddress

import httpx
import pytest

from app.settings import Settings
from app.webhooks.delivery import _peer_guard
from app.webhooks.targets import (
    OwnEndpoint,
    TargetRefused,
    address_refusal,
    check_addresses,
    parse_target,
    peer_refusal,
    pin_target,
)
from tests.fixtures.receiver import webhook_receiver


@pytest.mark.parametrize(
    ("address", "strict", "relaxed"),
    [
        ("93.184.215.14", None, None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None, None),
        ("169.254.169.254", "metadata", "metadata"),
        ("fd00:ec2::254", "metadata", "metadata"),
        ("100.100.100.200", "metadata", "metadata"),
        ("fe80::1", "metadata", "metadata"),
        ("::ffff:169.254.169.254", "metadata", "metadata"),
        ("0.0.0.0", "metadata", "metadata"),  # noqa: S104 - an address under test, not a bind
        ("224.0.0.1", "multicast", "multicast"),
        ("127.0.0.1", "private", None),
        ("::1", "private", None),
        ("10.0.0.1", "private", None),
        ("192.168.1.1", "private", None),
        ("172.16.0.1", "private", None),
        ("100.64.0.1", "private", None),  # carrier-grade NAT: not on the internet either
        ("::ffff:10.0.0.1", "private", None),
        # IPv6 addresses a network delivers to the IPv4 address inside them.
        ("::7f00:1", "private", None),  # IPv4-compatible 127.0.0.1
        ("::a9fe:a9fe", "metadata", "metadata"),  # IPv4-compatible 169.254.169.254
        ("64:ff9b::a9fe:a9fe", "metadata", "metadata"),  # NAT64 to the metadata service
        ("64:ff9b::7f00:1", "private", None),  # NAT64 to loopback
        ("64:ff9b::5db8:d70e", None, None),  # NAT64 to a public address is fine
        ("64:ff9b:1::a9fe:a9fe", "metadata", "metadata"),  # local-use NAT64
        ("64:ff9b:1::5db8:d70e", "private", None),
        ("2002:7f00:1::", "private", None),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", "metadata", "metadata"),  # 6to4 of the metadata service
        ("2001:0:5db8:d70e::80ff:fffe", "private", None),  # Teredo, client 127.0.0.1
        ("fec0::1", "private", None),  # site-local (deprecated, never global)
    ],
)
def test_address_rules(address: str, strict: str | None, relaxed: str | None) -> None:
    ip = ipaddress.ip_address(address)
    for allow, expected in ((False, strict), (True, relaxed)):
        why = address_refusal(ip, allow_private=allow)
        if expected is None:
            assert why is None
        else:
            assert why is not None
            assert expected in why


def test_every_resolved_address_must_pass(settings: Settings) -> None:
    target = parse_target("https://hooks.example.org/x")
    good = ipaddress.ip_address("93.184.215.14")
    bad = ipaddress.ip_address("169.254.169.254")
    assert check_addresses(target, [good], settings, own=None) == good
    with pytest.raises(TargetRefused, match="link-local"):
        check_addresses(target, [good, bad], settings, own=None)
    with pytest.raises(TargetRefused, match="no address"):
        check_addresses(target, [], settings, own=None)


def test_a_delivery_connects_to_the_checked_address_with_the_original_host() -> None:
    target = parse_target("https://hooks.example.org:8443/in?src=wg")
    assert target.host_header == "hooks.example.org:8443"
    assert target.path == "/in?src=wg"
    v4 = ipaddress.ip_address("93.184.215.14")
    v6 = ipaddress.ip_address("2606:2800::1")
    assert target.pinned_url(v4) == "https://93.184.215.14:8443/in?src=wg"
    assert target.pinned_url(v6) == "https://[2606:2800::1]:8443/in?src=wg"
    assert parse_target("http://example.org").host_header == "example.org"
    assert parse_target("http://[2606:2800::1]:81/").host_header == "[2606:2800::1]:81"


def test_pinning_resolves_names_and_applies_the_rules(settings: Settings) -> None:
    relaxed = settings.model_copy(update={"webhook_allow_private": True})
    target, address = asyncio.run(pin_target("http://localhost:9/x", relaxed, own=None))
    assert target.host == "localhost"
    assert address.is_loopback
    with pytest.raises(TargetRefused, match="loopback"):
        asyncio.run(pin_target("http://localhost:9/x", settings, own=None))
    with pytest.raises(TargetRefused, match="cannot resolve"):
        asyncio.run(pin_target("http://no-such-host.invalid/", relaxed, own=None))


@pytest.mark.parametrize(
    "spelling", ["127.0.0.1", "::ffff:127.0.0.1", "::7f00:1", "64:ff9b::7f00:1", "127.0.0.2", "::1"]
)
def test_the_server_itself_is_recognised_in_every_spelling_of_its_address(
    settings: Settings, spelling: str
) -> None:
    relaxed = settings.model_copy(
        update={"webhook_allow_private": True, "public_url": "http://127.0.0.1:8000"}
    )
    own: OwnEndpoint = (
        parse_target(relaxed.effective_public_url),
        [ipaddress.ip_address("127.0.0.1")],
    )
    address = ipaddress.ip_address(spelling)
    host = f"[{spelling}]" if ":" in spelling else spelling
    with pytest.raises(TargetRefused, match="this server itself"):
        check_addresses(parse_target(f"http://{host}:8000/hook"), [address], relaxed, own=own)
    elsewhere = parse_target(f"http://{host}:9000/hook")
    assert check_addresses(elsewhere, [address], relaxed, own=own) == address


def test_what_a_delivery_connected_to_is_checked_before_anything_is_sent(
    settings: Settings,
) -> None:
    relaxed = settings.model_copy(update={"webhook_allow_private": True})
    with webhook_receiver() as receiver:
        port = int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])

        async def post(expected: str) -> int:
            guard = _peer_guard(ipaddress.ip_address(expected), relaxed)
            async with httpx.AsyncClient(trust_env=False) as client:
                r = await client.post(
                    f"http://127.0.0.1:{port}/hook", content=b"{}", extensions={"trace": guard}
                )
                return r.status_code

        assert asyncio.run(post("127.0.0.1")) == 200
        assert asyncio.run(post("::ffff:127.0.0.1")) == 200  # the same address, spelled in v6
        with pytest.raises(TargetRefused, match=r"connected to 127\.0\.0\.1, not the checked"):
            asyncio.run(post("127.0.0.9"))
        assert len(receiver.snapshot()) == 2  # the refused request never reached it
    strict = peer_refusal(("127.0.0.1", 80), ipaddress.ip_address("127.0.0.1"), settings)
    assert strict is not None
    assert "loopback" in strict


def test_the_server_itself_is_recognised_by_name_even_when_its_name_does_not_resolve(
    settings: Settings,
) -> None:
    public = settings.model_copy(update={"public_url": "https://weights.internal.example"})
    own: OwnEndpoint = (parse_target(public.effective_public_url), [])
    target = parse_target("https://WEIGHTS.internal.example/v1/webhooks")
    with pytest.raises(TargetRefused, match="this server itself"):
        check_addresses(target, [ipaddress.ip_address("93.184.215.14")], public, own=own)
    other_port = parse_target("https://weights.internal.example:8443/hook")
    address = ipaddress.ip_address("93.184.215.14")
    assert check_addresses(other_port, [address], public, own=own) == address
