"""The address rules behind webhook URLs, and how a delivery is pinned to a checked address."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from app.settings import Settings
from app.webhooks.targets import (
    OwnEndpoint,
    TargetRefused,
    address_refusal,
    check_addresses,
    parse_target,
    pin_target,
)


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
