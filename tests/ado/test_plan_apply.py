"""`mlops ado plan|apply` against the fake Azure DevOps: idempotence, least privilege, faults and conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.ado.desired import APPROVAL_TYPE, BRANCH_CONTROL_DEFINITION, EXCLUSIVE_LOCK_TYPE, QUEUE_BUILDS, Desired
from mlops.ado.errors import AdoConflict, AdoPermissionError
from mlops.ado.plan import make_plan
from mlops.ado.project import AdoProject
from mlops.local.fake_ado import FakeAzureDevOps

from .conftest import BRIDGE


def _apply(ado: AdoProject, want: Desired) -> list[str]:
    lines: list[str] = []
    current = ado.read(want)
    ado.apply(want, make_plan(want, current), current, lines.append)
    return lines


def _writes(fake: FakeAzureDevOps) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


def test_apply_creates_the_project_setup_and_a_second_plan_changes_nothing(
    fake: FakeAzureDevOps, ado: AdoProject, want: Desired
) -> None:
    first = make_plan(want, ado.read(want))
    assert not first.empty and not first.conflicts
    _apply(ado, want)
    writes_after_first = len(_writes(fake))

    second = make_plan(want, ado.read(want))
    _apply(ado, want)  # a re-run reads, finds nothing to do, and writes nothing

    assert second.empty and second.unchanged == len(first.actions)
    assert len(_writes(fake)) == writes_after_first
    state = fake.project.state  # type: ignore[union-attr]
    pipelines = {p["name"]: p for p in state["pipelines"]}
    assert {p["configuration"]["path"] for p in pipelines.values()} == {
        "azure-pipelines/model-build.yml",
        "azure-pipelines/model-deploy.yml",
        "azure-pipelines/infrastructure.yml",
        "azure-pipelines/model-deploy-webhook.yml",
        "azure-pipelines/model-rollback.yml",
    }
    prod = next(e for e in state["environments"] if e["name"] == "mlops-prod")
    checks = {c["type"]["id"]: c for c in state["checks"] if c["resource"]["id"] == str(prod["id"])}
    approver = next(i for i in state["identities"] if i["providerDisplayName"] == want.approvers)
    assert checks[APPROVAL_TYPE["id"]]["settings"]["approvers"][0]["id"] == approver["id"]
    assert checks[APPROVAL_TYPE["id"]]["timeout"] == 1440
    assert EXCLUSIVE_LOCK_TYPE["id"] in checks
    branch = next(c for c in checks.values() if c["settings"].get("definitionRef", {}).get("id"))
    assert branch["settings"]["definitionRef"]["id"] == BRANCH_CONTROL_DEFINITION["id"]
    assert branch["settings"]["inputs"]["allowedBranches"] == "refs/heads/main"
    staging = next(e for e in state["environments"] if e["name"] == "mlops-staging")
    assert APPROVAL_TYPE["id"] not in {
        c["type"]["id"] for c in state["checks"] if c["resource"]["id"] == str(staging["id"])
    }
    # Least privilege: each connection is authorised for exactly the pipelines identities() names.
    deploy_id = pipelines["mlops-deploy"]["id"]
    build_id = pipelines["mlops-build"]["id"]
    endpoints = {e["name"]: e for e in state["endpoints"]}
    prod_connection = state["permissions"][f"endpoint/{endpoints['aws-deploy-prod']['id']}"]
    webhook_id = pipelines["mlops-deploy-webhook"]["id"]  # the deploy pipeline's webhook variant
    rollback_id = pipelines["mlops-rollback"]["id"]  # gated like prod (model-rollback.yml)
    assert [(p["id"], p["authorized"]) for p in prod_connection["pipelines"]] == [
        (deploy_id, True),
        (rollback_id, True),
        (webhook_id, True),
    ]
    assert not prod_connection["allPipelines"]["authorized"]
    assert fake.project.authorized("endpoint", endpoints["aws-build"]["id"], build_id)  # type: ignore[union-attr]
    assert not fake.project.authorized("endpoint", endpoints["aws-build"]["id"], deploy_id)  # type: ignore[union-attr]
    parameters = endpoints["aws-deploy-prod"]["authorization"]["parameters"]
    assert (
        parameters["assumeRoleArn"] == "arn:aws:iam::000000000003:role/mlops-deploy" and parameters["useOIDC"] == "true"
    )
    assert endpoints["aws-deploy-prod"]["type"] == "AWS"
    # The bridge may queue the deploy pipeline: Build namespace, token <project id>/<pipeline id>.
    bridge = next(i for i in state["identities"] if i["providerDisplayName"] == BRIDGE)
    acl = state["acls"][f"33344d9c-fc72-4d6f-aba5-fa317101a7e9/{state['project']['id']}/{deploy_id}"]
    assert acl[bridge["descriptor"]]["allow"] & QUEUE_BUILDS


def test_apply_revokes_pipelines_and_open_access_that_are_not_ours(
    fake: FakeAzureDevOps, ado: AdoProject, want: Desired
) -> None:
    _apply(ado, want)
    store = fake.project
    assert store is not None
    prod = next(e for e in store.state["endpoints"] if e["name"] == "aws-deploy-prod")
    permission = store.state["permissions"][f"endpoint/{prod['id']}"]
    permission["pipelines"].append({"id": 999, "authorized": True})  # someone authorised another pipeline
    permission["allPipelines"] = {"authorized": True}  # and opened it to all pipelines

    plan = make_plan(want, ado.read(want))
    assert [a.line() for a in plan.actions] == [
        "+ authorize permission service connection aws-deploy-prod: pipelines mlops-deploy, "
        "mlops-rollback, mlops-deploy-webhook only "
        "(open access to all pipelines removed); revoke 999"
    ]
    _apply(ado, want)
    assert not store.authorized("endpoint", prod["id"], 999)
    assert make_plan(want, ado.read(want)).empty


def test_a_missing_permission_names_it_stops_in_a_safe_order_and_a_re_run_resumes(
    fake: FakeAzureDevOps, ado: AdoProject, want: Desired
) -> None:
    store = fake.project
    assert store is not None
    store.deny.add("check")  # the token may create environments but not configure their checks

    with pytest.raises(AdoPermissionError) as caught:
        _apply(ado, want)

    message = str(caught.value)
    assert "create check mlops-staging" in message
    assert "the Administrator role on environment mlops-staging" in message  # the permission and the object
    assert "Done before it: create pipeline mlops-build" in message and "were not attempted" in message
    assert "re-run `mlops ado apply`" in message
    # Nothing after the refused step happened: no connection exists, and no environment is usable by a
    # pipeline before its checks exist.
    assert store.state["endpoints"] == [] and store.state["checks"] == []
    assert not any(key.startswith("environment/") for key in store.state["permissions"])

    store.deny.clear()
    _apply(ado, want)
    assert make_plan(want, ado.read(want)).empty


def test_objects_with_our_names_that_we_did_not_create_are_reported_never_overwritten(
    fake: FakeAzureDevOps, ado: AdoProject, want: Desired
) -> None:
    store = fake.project
    assert store is not None
    foreign = store.add_environment("mlops-prod", "owned by the release team")

    plan = make_plan(want, ado.read(want))
    assert [c.line() for c in plan.conflicts] == [
        "! conflict: environment mlops-prod exists and was not created by mlops ado "
        "(description 'owned by the release team'); left alone"
    ]
    assert not any(a.name.endswith("mlops-prod") and a.kind in ("check", "permission") for a in plan.actions)
    with pytest.raises(AdoConflict, match="environment mlops-prod"):
        _apply(ado, want)

    after = store.environment("mlops-prod")
    assert after == foreign  # same description, same id
    assert store.checks_on("environment", foreign["id"]) == []
    assert f"environment/{foreign['id']}" not in store.state["permissions"]
    assert store.environment("mlops-staging") is not None  # everything else was applied


def test_an_unknown_approver_group_fails_the_plan_with_the_setting_to_fix(
    ado: AdoProject, want: Desired, config: Any
) -> None:
    from dataclasses import replace

    from mlops.ado.errors import AdoError

    with pytest.raises(AdoError, match=r"approver group '\[mlops\]\\\\Nobody' .*azure_devops.setup.approvers"):
        make_plan(replace(want, approvers="[mlops]\\Nobody"), ado.read(want))
