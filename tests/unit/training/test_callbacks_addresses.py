"""Callback addresses: every resolved address is checked, with the resolver as a parameter."""

import socket

import pytest

from mlservice.training.callbacks import (
    CallbackRefused,
    address_refusal,
    check_address,
    check_url,
    resolve,
)


@pytest.mark.parametrize(
    ("address", "refused", "refused_even_if_private_allowed"),
    [
        ("93.184.216.34", None, None),
        ("2606:2800:220:1::1", None, None),
        ("::ffff:93.184.216.34", None, None),  # IPv4-mapped public: judged as its IPv4
        ("127.0.0.1", "non-public", None),
        ("10.0.0.1", "non-public", None),
        ("172.16.5.4", "non-public", None),
        ("192.168.0.10", "non-public", None),
        ("100.64.0.1", "non-public", None),  # shared (carrier-grade NAT)
        ("169.254.169.254", "link-local", "link-local"),  # cloud metadata: never
        ("::1", "non-public", None),
        ("fd00::1", "non-public", None),
        ("fe80::1", "link-local", "link-local"),
        ("fec0::1", "non-public", None),  # site-local, which ipaddress calls global
        ("::ffff:127.0.0.1", "non-public", None),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", "non-public", None),
        ("::ffff:169.254.169.254", "link-local", "link-local"),
        ("64:ff9b::7f00:1", "non-public", None),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", "non-public", None),  # 6to4 wrapping 127.0.0.1
        ("0.0.0.0", "unspecified", "unspecified"),
        ("::", "unspecified", "unspecified"),
        ("::ffff:0.0.0.0", "unspecified", "unspecified"),
        ("224.0.0.1", "multicast", "multicast"),
        ("ff02::1", "multicast", "multicast"),
        ("240.0.0.1", "reserved", "reserved"),
        ("255.255.255.255", "reserved", "reserved"),
        ("::7f00:1", "reserved", "reserved"),  # IPv4-compatible (deprecated)
        ("not-an-address", "invalid", "invalid"),
    ],
)
def test_address_refusal(address, refused, refused_even_if_private_allowed):
    assert address_refusal(address, allow_private=False) == refused
    assert address_refusal(address, allow_private=True) == refused_even_if_private_allowed


def test_refusals_name_the_host_the_address_and_the_fix():
    with pytest.raises(CallbackRefused) as private:
        check_address("hooks.example.com", "::ffff:127.0.0.1", allow_private=False)
    assert str(private.value) == (
        "callback_url host 'hooks.example.com' resolves to non-public address "
        "::ffff:127.0.0.1 (IPv4 127.0.0.1); set MLSERVICE_CALLBACK_ALLOW_PRIVATE=1 to allow it"
    )
    with pytest.raises(CallbackRefused) as unusable:
        check_address("hooks.example.com", "0.0.0.0", allow_private=True)
    message = str(unusable.value)
    assert "'hooks.example.com'" in message and "unspecified address 0.0.0.0" in message
    assert "public unicast" in message and "ALLOW_PRIVATE" not in message


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:a00:1]/hook",
        "http://[fe80::1]/hook",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_literal_addresses_are_checked_without_a_lookup(url):
    def no_lookup(host, port):
        raise AssertionError(f"{host} is an address: nothing to resolve")

    with pytest.raises(CallbackRefused, match="(non-public|link-local) address"):
        check_url(url, allow_private=False, resolver=no_lookup)


@pytest.mark.parametrize(
    "url",
    [
        "http://0.0.0.0:8000/hook",
        "http://224.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_unusable_addresses_refused_even_when_private_ones_are_allowed(url):
    with pytest.raises(CallbackRefused, match="can never use"):
        check_url(url, allow_private=True)


@pytest.mark.parametrize("private", ["10.0.0.1", "127.0.0.1", "::ffff:172.16.0.1"])
def test_every_resolved_address_is_checked_not_only_the_first(private):
    """DNS rebinding: a public first answer does not let a private second one through."""

    def rebinding(host, port):
        return ["93.184.216.34", private]

    with pytest.raises(CallbackRefused, match=f"non-public address {private}"):
        check_url("https://callback.test/hook", allow_private=False, resolver=rebinding)


def test_resolve_keeps_the_name_and_every_checked_address_once():
    calls = []

    def resolver(host, port):
        calls.append((host, port))
        return ["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"]

    target = resolve("https://Callback.Test/a/b?x=1#frag", allow_private=False, resolver=resolver)
    assert calls == [("callback.test", 443)]
    assert target.host == "callback.test" and target.port == 443
    assert target.path == "/a/b?x=1"
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1::1")


@pytest.mark.parametrize(
    "resolver",
    [
        lambda host, port: [],
        lambda host, port: (_ for _ in ()).throw(socket.gaierror(-2, "Name or service not known")),
    ],
)
def test_unresolvable_hosts_are_refused(resolver):
    with pytest.raises(CallbackRefused, match="host 'callback.test' does not resolve"):
        check_url("http://callback.test/hook", allow_private=True, resolver=resolver)


def test_an_invalid_port_is_refused():
    with pytest.raises(CallbackRefused, match="invalid port"):
        check_url("http://callback.test:99999/hook", allow_private=True)
