"""mlops/core/botocore_data.py: one parse of botocore's data files per process, the same data as botocore's own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.loaders
import botocore.session
import pytest
from botocore.stub import Stubber

from mlops.core import botocore_data


@pytest.fixture
def own_loader() -> Iterator[None]:
    """botocore's own loader during the test; shared again afterwards, as the test session runs (request it
    before monkeypatch, so that it shares again after monkeypatch has undone its changes)."""
    botocore_data.unshare()
    try:
        yield
    finally:
        botocore_data.share()


def _model(service: str, kind: str = "service-2") -> object:
    return botocore.session.Session().get_component("data_loader").load_service_model(service, kind)


def test_fresh_sessions_share_one_parse_and_botocores_own_loader_does_not(own_loader: None) -> None:
    assert not botocore_data.shared()
    assert _model("sagemaker") is not _model("sagemaker")  # botocore alone: a parse per session
    assert botocore_data.share() and botocore_data.shared()
    assert botocore_data.share()  # idempotent
    assert _model("sagemaker") is _model("sagemaker")


def test_shared_data_equals_botocores_own_also_after_repeated_extras_merges(own_loader: None) -> None:
    # autoscaling's paginators carry an sdk-extras file, which the loader merges into the model it loaded.
    own = {kind: _model("autoscaling", kind) for kind in ("service-2", "paginators-1")}
    botocore_data.share()
    for _ in range(3):  # the same cached model, merged into again by each new session's loader
        for kind, expected in own.items():
            assert json.dumps(_model("autoscaling", kind)) == json.dumps(expected)


def test_a_changed_file_is_read_again(tmp_path: Path, own_loader: None) -> None:
    botocore_data.share()
    loader = botocore.loaders.JSONFileLoader()
    path = tmp_path / "model"
    path.with_suffix(".json").write_text('{"version": 1}')
    first = loader.load_file(str(path))
    assert first == {"version": 1} and loader.load_file(str(path)) is first
    path.with_suffix(".json").write_text('{"version": 22}')
    assert loader.load_file(str(path)) == {"version": 22}
    assert loader.load_file(str(tmp_path / "missing")) is None


def test_an_unknown_loader_shape_is_left_alone(own_loader: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(botocore.loaders, "_JSON_OPEN_METHODS")
    assert botocore_data.share() is False
    assert not botocore_data.shared()


def test_the_models_botocore_rewrites_at_run_time_stay_per_session() -> None:
    """botocore's S3 handler strips `/{Bucket}` from the model's requestUri at a client's first call: another
    session (moto's router in the twin, say) must still read the model as published."""
    assert botocore_data.shared()
    s3 = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1").client("s3")
    with Stubber(s3) as stub:
        stub.add_response("head_bucket", {}, {"Bucket": "some-bucket"})
        s3.head_bucket(Bucket="some-bucket")
    assert s3.meta.service_model.operation_model("HeadBucket").http["requestUri"] == ""  # rewritten in its session
    assert _model("s3")["operations"]["HeadBucket"]["http"]["requestUri"] == "/{Bucket}"  # type: ignore[index]
