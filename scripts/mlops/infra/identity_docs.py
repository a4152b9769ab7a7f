"""The docs' tables of service connections, environments and roles, rendered from mlops/core/identities.py. Pure.

docs/setup.md and docs/security.md carry these tables between `<!-- identities:<table>:begin -->` and
`<!-- identities:<table>:end -->` markers; tests/unit/test_identity_docs.py fails when a doc's table is not what
this module renders from the default mlops.yaml, and `python -m mlops.infra.identity_docs` rewrites them.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mlops.core.config import Config, load_config
from mlops.core.identities import (
    CFN_EXECUTION_ROLE,
    PIPELINE_FILES,
    REGISTRY_READ_ROLE,
    STAGING_PASS_ROLE,
    Identities,
    identities,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCS = ("docs/setup.md", "docs/security.md")
_BLOCK = re.compile(
    r"(<!-- identities:(?P<name>[a-z-]+):begin -->\n)(?P<body>.*?)(<!-- identities:(?P=name):end -->)", re.S
)

_PURPOSE = {
    "build": "model-build: upsert and run the SageMaker pipeline, write artifacts; assumes nothing",
    "registry-read": "model-deploy's Verify: re-read the package in the registry",
    "deploy-staging": "model-deploy's staging deployment jobs: deploy, endpoint tests, record the staging pass",
    "deploy-prod": "model-deploy's prod deployment job: deploy, then the smoke tests in the same job",
}


def _pipelines(keys: tuple[str, ...]) -> str:
    return ", ".join(f"`{PIPELINE_FILES[k].rsplit('/', 1)[-1]}`" for k in keys)


def connections_table(who: Identities) -> str:
    lines = [
        "| connection | role (account) | may be used by | only in a deployment job on | for |",
        "|---|---|---|---|---|",
    ]
    for c in who.connections:
        purpose = _PURPOSE.get(
            c.purpose,
            f"infrastructure.yml: change sets on the `mlops-{c.account}` and `mlops-<use case>-{c.account}` stacks",
        )
        lines.append(
            f"| `{c.name}` | `{c.role_name}` ({c.account}) | {_pipelines(c.pipelines)} | "
            f"{f'`{c.environment}`' if c.environment else '-'} | {purpose} |"
        )
    return "\n".join(lines) + "\n"


def environments_table(who: Identities) -> str:
    lines = ["| environment | may be used by | checks |", "|---|---|---|"]
    for e in who.environments:
        checks = [name for name, on in (("approval", e.approval), ("exclusive lock", e.exclusive_lock)) if on]
        lines.append(f"| `{e.name}` | {_pipelines(e.pipelines)} | {', '.join(checks) or 'none'} |")
    return "\n".join(lines) + "\n"


def chained_roles_table(config: Config) -> str:
    """The roles no connection is configured with: reached by sts:AssumeRole, or CloudFormation's."""
    staging = identities(config).connection("deploy-staging")
    prod = identities(config).connection("deploy-prod")
    return (
        "| role (account) | assumed by | may |\n"
        "|---|---|---|\n"
        f"| `{REGISTRY_READ_ROLE}` (automation) | the `aws-registry-read` connection; the stage deploy roles "
        f"`{staging.role_name}` (staging) and `{prod.role_name}` (prod) | read the package group, its evaluation "
        "report and test data, the staging pass |\n"
        f"| `{STAGING_PASS_ROLE}` (automation) | the staging deploy role `{staging.role_name}` only | write the "
        "staging pass prod requires |\n"
        f"| `{CFN_EXECUTION_ROLE}` (each account) | CloudFormation, as the RoleARN of the infrastructure "
        "connection's change sets | create what the account's mlops stack declares; never the access stack's roles |\n"
    )


def tables(config: Config) -> dict[str, str]:
    who = identities(config)
    return {
        "connections": connections_table(who),
        "environments": environments_table(who),
        "chained-roles": chained_roles_table(config),
    }


def render(text: str, rendered: dict[str, str]) -> str:
    """The document with each marked table replaced by its rendering (unknown table names are kept)."""

    def replace(match: re.Match[str]) -> str:
        body = rendered.get(match.group("name"), match.group("body"))
        return f"{match.group(1)}{body}{match.group(4)}"

    return _BLOCK.sub(replace, text)


def marked(text: str) -> dict[str, str]:
    return {m.group("name"): m.group("body") for m in _BLOCK.finditer(text)}


def main() -> int:
    rendered = tables(load_config(REPO_ROOT / "mlops.yaml", environ={}))
    for doc in DOCS:
        path = REPO_ROOT / doc
        path.write_text(render(path.read_text(encoding="utf-8"), rendered), encoding="utf-8")
        print(f"rewrote the identity tables of {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
