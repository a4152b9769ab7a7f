"""The fake Azure DevOps server, driven by the real azure-devops SDK and by plain HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from azure.devops.connection import Connection
from azure.devops.exceptions import AzureDevOpsServiceError
from azure.devops.v7_1.pipelines.models import RunPipelineParameters
from msrest.authentication import BasicAuthentication

from mlops.local.fake_ado import FakeAzureDevOps, FakeRun, WebhookDelivery


def _client(fake: FakeAzureDevOps, pat: str = "p"):  # type: ignore[no-untyped-def]
    return Connection(base_url=fake.org_url, creds=BasicAuthentication("", pat)).clients_v7_1.get_pipelines_client()


def test_the_sdk_discovers_the_runs_location_starts_lists_and_gets_runs() -> None:
    triggered: list[object] = []
    with FakeAzureDevOps("contoso-sdk", pat="p", on_trigger=triggered.append) as fake:
        client = _client(fake)
        run = client.run_pipeline(RunPipelineParameters(template_parameters={"a": "1"}), "proj", 5)
        listed = client.list_runs("proj", 5)
        got = client.get_run("proj", 5, run.id)
        methods = [(r.method, r.path) for r in fake.requests]

    assert methods[0] == ("OPTIONS", "/contoso-sdk/_apis")
    assert methods[1:] == [
        ("POST", "/contoso-sdk/proj/_apis/pipelines/5/runs"),
        ("GET", "/contoso-sdk/proj/_apis/pipelines/5/runs"),
        ("GET", f"/contoso-sdk/proj/_apis/pipelines/5/runs/{run.id}"),
    ]
    assert [r.id for r in listed] == [run.id] and got.template_parameters == {"a": "1"} and got.state == "inProgress"
    assert len(triggered) == 1 and isinstance(triggered[0], FakeRun) and triggered[0].template_parameters == {"a": "1"}


def test_unknown_pipelines_and_undeclared_parameters_are_refused_like_azure_devops() -> None:
    with FakeAzureDevOps("contoso-strict", pipelines={5: {"modelPackageArn"}}) as fake:
        client = _client(fake)
        with pytest.raises(AzureDevOpsServiceError, match="Pipeline with id 6 does not exist"):
            client.run_pipeline(RunPipelineParameters(template_parameters={}), "proj", 6)
        with pytest.raises(AzureDevOpsServiceError, match="Unexpected parameter 'other'"):
            client.run_pipeline(RunPipelineParameters(template_parameters={"other": "x"}), "proj", 5)
        assert fake.runs == []


def test_queued_faults_answer_in_order_then_the_server_recovers() -> None:
    with FakeAzureDevOps("contoso-faults") as fake:
        fake.fail_next(429, retry_after=9)
        fake.fail_next(503)
        url = fake.org_url + "/proj/_apis/pipelines/1/runs?api-version=7.1"
        with pytest.raises(urllib.error.HTTPError) as throttled:
            urllib.request.urlopen(url, timeout=5)
        with pytest.raises(urllib.error.HTTPError) as unavailable:
            urllib.request.urlopen(url, timeout=5)
        with urllib.request.urlopen(url, timeout=5) as answer:
            assert answer.status == 200
    assert throttled.value.code == 429 and throttled.value.headers["Retry-After"] == "9"
    assert unavailable.value.code == 503
    assert len(fake.requests) == 3


def test_a_slow_answer_outlasts_a_client_timeout_and_stop_ends_it() -> None:
    with FakeAzureDevOps("contoso-slow") as fake:
        fake.slow_next(60)
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            urllib.request.urlopen(fake.org_url + "/proj/_apis/pipelines/1/runs?api-version=7.1", timeout=0.2)
    assert len(fake.requests) == 1  # stop() returned although the answer was held for 60 s


def test_wrong_credentials_get_401() -> None:
    with FakeAzureDevOps("contoso-auth", pat="right") as fake:
        from azure.devops.exceptions import AzureDevOpsAuthenticationError

        with pytest.raises(AzureDevOpsAuthenticationError):
            _client(fake, pat="wrong").run_pipeline(RunPipelineParameters(template_parameters={}), "proj", 1)


def test_a_failing_hook_is_answered_500_and_kept() -> None:
    def broken(trigger: object) -> None:
        raise RuntimeError("runner crashed")

    with FakeAzureDevOps("contoso-hook", on_trigger=broken) as fake:
        fake.register_webhook("hook")
        request = urllib.request.Request(fake.webhook_url("hook"), data=b'{"x": 1}', method="POST")
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=5)
    assert raised.value.code == 500 and "runner crashed" in raised.value.read().decode()
    assert [str(e) for e in fake.hook_errors] == ["runner crashed"]
    assert isinstance(fake.webhook_deliveries[0], WebhookDelivery)


def test_the_build_api_lists_runs_by_definition_tags_and_time_and_adds_tags() -> None:
    from datetime import UTC, datetime, timedelta

    from azure.devops.v7_1.build.build_client import BuildClient

    times = iter([datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=d) for d in range(3)])
    with FakeAzureDevOps("contoso-build", pat="p", clock=lambda: next(times)) as fake:
        runs = _client(fake)
        for pipeline in (5, 5, 6):
            runs.run_pipeline(
                RunPipelineParameters(template_parameters={"modelPackageArn": f"a{pipeline}"}), "p", pipeline
            )
        builds = BuildClient(fake.org_url, BasicAuthentication("", "p"))
        assert sorted(builds.add_build_tags(["approval:x", "other"], "p", 1)) == ["approval:x", "other"]

        tagged = builds.get_builds("p", definitions=[5], tag_filters=["approval:x"])
        both = builds.get_builds("p", tag_filters=["approval:x", "missing"])  # a build must carry every tag
        recent = builds.get_builds("p", definitions=[5], min_time=datetime(2026, 11, 2, tzinfo=UTC))
        newest_first = builds.get_builds("p", query_order="queueTimeDescending", top=2)
        with pytest.raises(AzureDevOpsServiceError, match="could not be found"):
            builds.add_build_tags(["t"], "p", 99)
        request = fake.requests_to("builds")[0]

    assert [b.id for b in tagged] == [1] and tagged[0].tags == ["approval:x", "other"]
    assert tagged[0].template_parameters == {"modelPackageArn": "a5"} and tagged[0].definition.id == 5
    assert tagged[0]._links.additional_properties["web"]["href"].endswith("/p/_build/results?buildId=1")
    assert both == [] and [b.id for b in recent] == [2] and [b.id for b in newest_first] == [3, 2]
    assert request.path == "/contoso-build/p/_apis/build/Builds"
    assert request.header("accept") == "application/json;api-version=7.1-preview.7"
    assert fake.requests_to("tags")[0].json() == ["approval:x", "other"]  # the body form: a JSON array
