import socket
from collections.abc import Iterator
from typing import Any

import pytest
from covkit.retry import backoff_delays, retry


def test_backoff_delays_grow_and_are_capped() -> None:
    assert backoff_delays(4, base=1.0, factor=3.0, cap=5.0) == [1.0, 3.0, 5.0]
    assert backoff_delays(1) == []


def test_backoff_needs_an_attempt() -> None:
    with pytest.raises(ValueError):
        backoff_delays(0)


def test_retry_sleeps_between_failures(mocker: Any) -> None:
    sleep = mocker.patch("covkit.retry.time.sleep")
    calls: Iterator[object] = iter([OSError("down"), OSError("down"), "ok"])

    def flaky() -> str:
        result = next(calls)
        if isinstance(result, Exception):
            raise result
        return str(result)

    assert retry(flaky, attempts=3, base=0.5) == "ok"
    assert [call.args[0] for call in sleep.call_args_list] == [0.5, 1.0]


def test_retry_gives_up(mocker: Any) -> None:
    mocker.patch("covkit.retry.time.sleep")
    function = mocker.Mock(side_effect=OSError("down"))
    with pytest.raises(OSError):
        retry(function, attempts=2)
    assert function.call_count == 2


@pytest.mark.network
def test_retry_against_a_real_server() -> None:
    retry(lambda: socket.create_connection(("pypi.org", 443), timeout=5).close(), attempts=2)


def test_resolves_a_real_host() -> None:
    assert socket.getaddrinfo("pypi.org", 443)
