"""The data plane refuses to start on a bad setting or a taken port, with one line saying
which and why, and starts on the documented defaults' shapes."""

import pytest

from tests.conftest import DATAPLANE_TOKEN, DataPlane, assert_one_clear_line, start_and_fail
from tools import stack


@pytest.fixture
def good_settings(redis_url: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "PRISM_HTTP_LISTEN": f"127.0.0.1:{stack.free_port()}",
        "PRISM_CONTROLPLANE_ADDR": "127.0.0.1:50051",
        "PRISM_DATAPLANE_TOKEN": DATAPLANE_TOKEN,
    }


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"PRISM_HTTP_LISTEN": "8080"}, ["PRISM_HTTP_LISTEN", "host:port"]),
        ({"PRISM_CONTROLPLANE_ADDR": "controlplane"}, ["PRISM_CONTROLPLANE_ADDR", "host:port"]),
        (
            {"PRISM_CONTROLPLANE_ADDR": "unix:run/cp.sock"},
            ["PRISM_CONTROLPLANE_ADDR", "unix:/absolute/path"],
        ),
        ({"REDIS_URL": "localhost:6379"}, ["REDIS_URL", "Redis URL"]),
        ({"PRISM_CHECK_DEADLINE_MS": "-5"}, ["PRISM_CHECK_DEADLINE_MS", "positive"]),
        ({"PRISM_UPSTREAM_TIMEOUT": "soon"}, ["PRISM_UPSTREAM_TIMEOUT", "positive"]),
        ({"PRISM_UPSTREAM_TIMEOUT": "nan"}, ["PRISM_UPSTREAM_TIMEOUT", "positive"]),
        ({"PRISM_HTTP_WORKERS": "²"}, ["PRISM_HTTP_WORKERS", "whole number"]),
        ({"PRISM_HTTP_WORKERS": "0"}, ["PRISM_HTTP_WORKERS", "whole number"]),
        ({"PRISM_HTTP_WORKERS": "two"}, ["PRISM_HTTP_WORKERS", "whole number"]),
        (
            {"PRISM_TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"},
            ["PRISM_TRUSTED_PROXIES", "'proxy.internal'", "CIDR"],
        ),
        (
            {"PRISM_TRUSTED_PROXIES": "10.0.0.1/8"},
            ["PRISM_TRUSTED_PROXIES", "'10.0.0.1/8'", "host bits"],
        ),
    ],
    ids=[
        "bad-listen",
        "bad-controlplane-addr",
        "relative-unix-socket",
        "bad-redis-url",
        "bad-deadline",
        "bad-timeout",
        "nan-timeout",
        "superscript-workers",
        "no-workers",
        "bad-workers",
        "bad-trusted-proxy",
        "trusted-proxy-host-bits",
    ],
)
def test_a_bad_setting_stops_the_start_with_one_line(
    good_settings: dict[str, str], change: dict[str, str], says: list[str]
) -> None:
    result = start_and_fail("dataplane", good_settings | change)

    assert_one_clear_line(result, "dataplane", 2, "configuration error", *says)


def test_a_taken_port_stops_the_start_with_one_line(
    good_settings: dict[str, str], dataplane: DataPlane
) -> None:
    taken = dataplane.base.removeprefix("http://")

    result = start_and_fail("dataplane", good_settings | {"PRISM_HTTP_LISTEN": taken})

    assert_one_clear_line(result, "dataplane", 1, f"PRISM_HTTP_LISTEN={taken}")
