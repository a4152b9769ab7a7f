"""The requests `mlops ado apply` sends through the SDK match Microsoft's REST spec: method, path, api-version
and body keys (tests/ado/rest_spec_shapes.json, recorded from vsts-rest-api-specs 7.1)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlops.ado.desired import Desired
from mlops.ado.plan import make_plan
from mlops.ado.project import AdoProject
from mlops.local.fake_ado import FakeAzureDevOps, RecordedRequest

SHAPES: dict[str, Any] = json.loads((Path(__file__).parent / "rest_spec_shapes.json").read_text())


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "/?$", re.IGNORECASE)


def _version(request: RecordedRequest) -> str:
    found = re.search(r"api-version=([\w.\-]+)", request.header("accept") or "")
    return found.group(1) if found else request.query.get("api-version", [""])[0]


def test_every_write_of_apply_has_the_spec_shape(fake: FakeAzureDevOps, ado: AdoProject, want: Desired) -> None:
    store = fake.project
    assert store is not None
    store.state["repositories"][0]["defaultBranch"] = "refs/heads/master"  # so the pipelines' branch is set too
    current = ado.read(want)
    ado.apply(want, make_plan(want, current), current, lambda _line: None)
    assert {p["defaultBranch"] for p in store.state["pipelines"]} == {"refs/heads/main"}
    writes = [r for r in fake.requests if r.method in ("POST", "PATCH", "PUT")]

    matched: set[str] = set()
    for request in writes:
        operation = next(
            (
                name
                for name, shape in SHAPES.items()
                if not name.startswith("_")
                and shape["method"] == request.method
                and _pattern(shape["path"]).match(request.path)
            ),
            None,
        )
        assert operation is not None, f"{request.method} {request.path} is no operation of the REST spec"
        shape = SHAPES[operation]
        matched.add(operation)
        version = _version(request)
        # The spec's version, or its preview of the same major.minor (what the SDK 7.1 sends).
        assert version == shape["version"] or version.startswith(shape["version"].split("-")[0] + "-preview"), (
            operation,
            version,
        )
        body = request.json()
        assert sorted(set(shape["body"]) - set(body)) == [], (operation, sorted(body))
        if "configuration" in shape:
            assert sorted(set(shape["configuration"]) - set(body["configuration"])) == [], operation

    assert matched == {name for name in SHAPES if not name.startswith("_")}
