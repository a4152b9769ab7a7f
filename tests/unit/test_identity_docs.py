"""docs/setup.md and docs/security.md name exactly the connections, environments and roles that the YAML and the
templates use: their tables are rendered from mlops/core/identities.py, and nothing in them names an identity the
source does not have. On the old docs (`aws-automation`, environments `staging` and `prod`) these tests fail."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlops.core.config import load_config
from mlops.core.identities import identities
from mlops.infra.identity_docs import DOCS, marked, render, tables
from mlops.infra.templates import TEMPLATES_DIR, load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_config(REPO_ROOT / "mlops.yaml", environ={})


@pytest.mark.parametrize("doc", DOCS)
def test_the_docs_tables_are_the_identities(doc: str) -> None:
    text = (REPO_ROOT / doc).read_text(encoding="utf-8")
    expected = tables(CONFIG)
    found = marked(text)
    assert found, f"{doc} has no generated identity table"
    for name, body in found.items():
        assert body == expected[name], f"{doc}: table {name!r} differs; run `python -m mlops.infra.identity_docs`"
    assert render(text, expected) == text


def test_setup_lists_every_connection_and_environment() -> None:
    found = marked((REPO_ROOT / "docs/setup.md").read_text(encoding="utf-8"))
    assert set(found) == {"connections", "environments"}
    who = identities(CONFIG)
    for connection in who.connections:
        assert f"| `{connection.name}` |" in found["connections"]
    for environment in who.environments:
        assert f"| `{environment.name}` |" in found["environments"]


@pytest.mark.parametrize("doc", DOCS)
def test_no_connection_or_environment_the_source_does_not_have(doc: str) -> None:
    who = identities(CONFIG)
    names = {c.name for c in who.connections}
    text = (REPO_ROOT / doc).read_text(encoding="utf-8")
    for mentioned in re.findall(r"`(aws-[a-z0-9-]+)`", text):
        assert mentioned in names or mentioned == "aws-infra-", f"{doc} names connection {mentioned!r}: not in {names}"
    assert "aws-infra-<account>" in text or doc.endswith("setup.md")
    # environments: the old docs told readers to create `staging` and `prod`, which no YAML uses
    assert not re.search(r"create `staging` and `prod`", text), doc
    for mentioned in re.findall(r"environment `([a-z0-9-]+)`", text):
        assert who.environment(mentioned) is not None or mentioned.endswith("-<account>"), (doc, mentioned)


def test_every_role_in_the_tables_is_a_templates_role() -> None:
    defaults = {
        str(spec["Default"])
        for path in TEMPLATES_DIR.glob("*.yaml")
        for key, spec in (load_template(path).get("Parameters") or {}).items()
        if key.endswith("RoleName") and "Default" in spec
    }
    rendered = "".join(tables(CONFIG).values())
    roles = set(re.findall(r"`(mlops-[a-z-]+)` \(", rendered))
    assert roles and roles <= defaults, roles - defaults
