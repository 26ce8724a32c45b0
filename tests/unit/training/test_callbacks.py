"""Callback URLs: only public http(s) hosts unless private ones are allowed."""

import pytest

from mlservice.training.callbacks import CallbackRefused, check_url, signature


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
    ],
)
def test_private_and_loopback_hosts_are_refused(url):
    with pytest.raises(CallbackRefused, match="(non-public|link-local) address"):
        check_url(url, allow_private=False)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "http://localhost/hook"])
def test_private_hosts_allowed_when_configured(url):
    check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["ftp://example.org/x", "file:///etc/passwd", "hook", 42])
def test_only_http_urls(url):
    with pytest.raises(CallbackRefused):
        check_url(url, allow_private=True)


def test_signature_covers_timestamp_and_body():
    assert signature(b"{}", "1", "s") != signature(b"{}", "2", "s")
    assert signature(b"{}", "1", "s") != signature(b"[]", "1", "s")
    assert signature(b"{}", "1", "s").startswith("sha256=")
