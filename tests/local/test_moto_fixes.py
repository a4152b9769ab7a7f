"""The twin's moto patches that change cost only: same answers, computed once."""

from __future__ import annotations

from typing import Any

import pytest
from moto.core.base_backend import AccountSpecificBackend
from moto.sqs.models import SQSBackend

from mlops.local import moto_fixes
from mlops.local.moto_fixes import regions_listed_once


def test_regions_are_listed_once_per_service_with_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = AccountSpecificBackend("sqs", "000000000009", SQSBackend, True, None).regions
    moto_fixes._regions_of.cache_clear()
    session = AccountSpecificBackend.get_session()
    calls: list[Any] = []
    listed = session.get_available_regions

    def counted(*args: Any, **kwargs: Any) -> list[str]:
        calls.append(args)
        return listed(*args, **kwargs)

    monkeypatch.setattr(session, "get_available_regions", counted)
    with regions_listed_once():
        first = AccountSpecificBackend("sqs", "000000000008", SQSBackend, True, ["eu-test-1"]).regions
        per_partition = len(calls)
        second = AccountSpecificBackend("sqs", "000000000007", SQSBackend, True, None).regions
    assert first == [*expected, "eu-test-1"]
    assert second == expected
    assert per_partition > 0 and len(calls) == per_partition  # the second account listed nothing again
    # Outside the patch moto lists them again for every backend, as before.
    AccountSpecificBackend("sqs", "000000000006", SQSBackend, True, None)
    assert len(calls) == 2 * per_partition
