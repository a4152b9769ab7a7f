"""`mlops ado plan|apply`: the Azure DevOps project as code, from mlops.yaml (see mlops.ado).

Credentials: a PAT in AZURE_DEVOPS_EXT_PAT (or MLOPS_ADO_PAT), else an Entra token from azure-identity
(`az login`, a managed identity, or AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from mlops.ado.desired import Desired
    from mlops.ado.plan import Current, Plan
    from mlops.ado.project import AdoProject
    from mlops.core.config import Config


@click.group()
def ado() -> None:
    """Set up the Azure DevOps project: pipelines, environments and checks, connections, permissions."""


def _planned(ctx: click.Context, organization_url: str | None) -> tuple[AdoProject, Desired, Current, Plan]:
    from mlops.ado.desired import desired
    from mlops.ado.plan import make_plan
    from mlops.ado.project import AdoProject, credentials_from_environment

    config: Config = ctx.obj.config
    want = desired(config)
    project = AdoProject(
        organization_url or config.azure_devops.organization_url,
        config.azure_devops.project,
        credentials_from_environment(),
    )
    current = project.read(want)
    return project, want, current, make_plan(want, current)


_ORG = click.option("--organization-url", help="Override azure_devops.organization_url (e.g. a test organization).")


@ado.command("plan")
@_ORG
@click.pass_context
def plan_command(ctx: click.Context, organization_url: str | None) -> None:
    """Print what `apply` would change; changes nothing. Exit 2 when there is something to change."""
    _, _, _, plan = _planned(ctx, organization_url)
    for line in plan.lines():
        click.echo(line)
    if not plan.empty or plan.conflicts:
        ctx.exit(2)


@ado.command("apply")
@_ORG
@click.pass_context
def apply_command(ctx: click.Context, organization_url: str | None) -> None:
    """Change only what differs, in an order safe to re-run; name conflicts are reported, never overwritten."""
    project, want, current, plan = _planned(ctx, organization_url)
    for line in plan.lines():
        click.echo(line)
    project.apply(want, plan, current, click.echo)
    click.echo("Azure DevOps project is up to date")
