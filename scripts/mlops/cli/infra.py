"""`mlops infra lint|deploy`: the CloudFormation of the automation, staging and prod accounts (infra/templates/).

Imports of cfn-lint, boto3 and the deploy code happen inside the commands, so `mlops --help` stays fast.
"""

from __future__ import annotations

import json
from typing import Any

import click

from mlops.core.errors import InfraError
from mlops.infra.templates import ACCOUNTS, DEFAULT_POLICIES_PER_ROLE, MAX_POLICIES_PER_ROLE, TEMPLATES_DIR, AccountName

POLICY_QUOTA = click.option(
    "--policy-quota",
    type=click.IntRange(1, MAX_POLICIES_PER_ROLE),
    default=DEFAULT_POLICIES_PER_ROLE,
    show_default=True,
    help="IAM's 'Managed policies per role' in your accounts (10 by default, up to 20 after a quota increase): "
    "each use case attaches one policy to each shared role it uses.",
)


@click.group("infra")
def infra() -> None:
    """CloudFormation of the three accounts: lint (cfn-lint, checkov) and deploy through change sets."""


def _progress(message: str) -> None:
    click.echo(message, err=True)


@infra.command("lint")
@click.option(
    "--checkov/--no-checkov",
    "with_checkov",
    default=True,
    show_default=True,
    help="Also run checkov (installed into .tools/checkov from infra/requirements-checkov.lock if missing).",
)
@click.option(
    "--region",
    "regions",
    multiple=True,
    metavar="REGION",
    help="Region(s) whose resource specs cfn-lint checks against (default: mlops.yaml region).",
)
@POLICY_QUOTA
@click.pass_obj
def lint(obj: Any, with_checkov: bool, regions: tuple[str, ...], policy_quota: int) -> None:
    """Lint the templates; exit non-zero on any cfn-lint error or warning or any failed checkov check, or when
    the use cases would attach more managed policies to a shared role than IAM allows."""
    from mlops.infra.lint import FAILING_SEVERITIES, cfn_lint, ensure_checkov, run_checkov
    from mlops.infra.templates import check_policy_quota, use_case_names

    totals = check_policy_quota(obj.config, policy_quota)
    click.echo(
        f"managed policies per role: at most {max(totals.values(), default=0)} of {policy_quota} "
        f"for {len(use_case_names(obj.config))} use case(s)"
    )

    templates = sorted(TEMPLATES_DIR.glob("*.yaml"))
    if not templates:
        raise InfraError(f"no templates in {TEMPLATES_DIR}: expected automation.yaml and target.yaml")
    findings = cfn_lint(templates, list(regions) or [obj.config.region])
    for finding in findings:
        click.echo(finding.describe())
    failing = [f for f in findings if f.severity in FAILING_SEVERITIES]
    errors = sum(f.severity == "error" for f in findings)
    click.echo(
        f"cfn-lint: {errors} error(s), {len(failing) - errors} warning(s), "
        f"{len(findings) - len(failing)} informational in {len(templates)} template(s)"
    )
    checkov_failed = 0
    if with_checkov:
        report = run_checkov(ensure_checkov(progress=_progress), TEMPLATES_DIR)
        for failure in report.failures:
            click.echo(f"{failure.path}: {failure.check_id} {failure.resource}: {failure.name}")
        for check_id, resource, reason in report.skips:
            click.echo(f"  skipped {check_id} on {resource}: {reason.strip()}")
        click.echo(
            f"checkov: {report.failed} failed, {report.passed} passed, {report.skipped} skipped (each with its reason)"
        )
        checkov_failed = report.failed
    if failing or checkov_failed:
        raise InfraError(
            f"infra lint failed: {len(failing)} cfn-lint error(s)/warning(s), {checkov_failed} failed checkov check(s)",
            hint="fix the findings listed above; a checkov skip needs a reason in the resource's Metadata",
        )


@infra.command("deploy")
@click.option("--account", type=click.Choice(ACCOUNTS), required=True, help="Whose stack to create or update.")
@click.option("--dry-run", is_flag=True, help="Create and print the change set, then delete it; change nothing.")
@click.option(
    "--parameter",
    "-p",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="A template parameter mlops.yaml does not set (e.g. AzureDevOpsOrganizationId, BridgeCodeKey). "
    "On an update, parameters not given keep their previous values.",
)
@click.option(
    "--role-arn",
    metavar="ARN",
    help="Assume this role first, e.g. an administrator role in the account for the first deploy.",
)
@click.option(
    "--bootstrap",
    is_flag=True,
    help="The first deploy, by an administrator: CloudFormation acts as the caller (no RoleARN), because the "
    "execution role does not exist yet. Later deploys pass the account's execution role (access.yaml).",
)
@click.option(
    "--access",
    is_flag=True,
    help="Deploy the account's access stack (access.yaml: the infrastructure connection's role and "
    "CloudFormation's execution role) instead of its mlops stack. An administrator's step, once per account.",
)
@click.option(
    "--use-case",
    "only_use_case",
    metavar="NAME",
    help="Deploy only this use case's stack (mlops-<NAME>-<account>); the account's shared stack must exist. "
    "Without it: the shared stack, then every use case's stack.",
)
@POLICY_QUOTA
@click.option(
    "--timeout",
    type=click.IntRange(min=10),
    default=1800,
    show_default=True,
    help="Seconds to wait for the change set and the stack at most.",
)
@click.pass_obj
def deploy(
    obj: Any,
    account: AccountName,
    dry_run: bool,
    overrides: tuple[str, ...],
    role_arn: str | None,
    bootstrap: bool,
    access: bool,
    only_use_case: str | None,
    policy_quota: int,
    timeout: int,
) -> None:
    """Create or update the account's stacks through change sets, each printed before it is executed: the shared
    stack (mlops-<account>), then one stack per use case (mlops-<use case>-<account>, use-case.yaml).

    CloudFormation carries them out as the account's execution role (RoleARN), so the infrastructure connection
    needs no rights beyond change sets on these stacks; --bootstrap and --access are an administrator's steps.
    --parameter applies to the shared (or access) stack only."""
    from mlops.core.aws import assume_role_session, session
    from mlops.infra.deploy import DeployResult, check_account, deploy_stack, stack_outputs
    from mlops.infra.moto_gaps import supplement_stack
    from mlops.infra.templates import (
        StackSpec,
        check_policy_quota,
        execution_role_arn,
        parse_overrides,
        stack_spec,
        use_case_names,
        use_case_stack_spec,
    )

    config = obj.config
    if access and only_use_case:
        raise InfraError("--access and --use-case exclude each other: the access stack is one per account")
    if only_use_case and overrides:
        raise InfraError(
            "--parameter sets the shared stack's parameters; a use case's stack takes its values from mlops.yaml",
            hint="drop --use-case to deploy the shared stack with the parameter, then the use cases",
        )
    if not access:
        check_policy_quota(config, policy_quota)
    shared = stack_spec(config, account, parse_overrides(overrides), access=access)
    execution_role = None if bootstrap or access else execution_role_arn(config, account)
    aws = session(config)
    if role_arn:
        aws = assume_role_session(aws, role_arn, f"mlops-infra-{account}", config.region)
    check_account(aws.client("sts"), shared)
    cfn = aws.client("cloudformation")

    def apply(spec: StackSpec) -> DeployResult:
        result = deploy_stack(
            cfn, spec, dry_run=dry_run, timeout_seconds=timeout, progress=_progress, role_arn=execution_role
        )
        if result.executed and config.is_local:
            # moto's CloudFormation skips some types and properties silently: add what the local flow uses.
            supplement_stack(aws, spec, progress=_progress)
        return result

    results = []
    if not only_use_case:
        results.append(apply(shared))
    if not access:
        # The use cases' stacks name the shared stack's roles and outputs: read them as deployed.
        names = [only_use_case] if only_use_case else use_case_names(config)
        try:
            outputs = stack_outputs(cfn, shared.stack_name)
        except InfraError:
            if not (dry_run and not only_use_case):
                raise
            # A dry run of the first deploy: the shared stack is only planned, so its use cases cannot be yet.
            _progress(f"the use cases' stacks are planned once {shared.stack_name} exists")
            names, outputs = [], {}
        for name in names:
            results.append(apply(use_case_stack_spec(config, account, name, outputs)))
    click.echo(
        json.dumps(
            [
                {
                    "stack": result.stack_name,
                    "outcome": result.outcome,
                    "changes": len(result.changes),
                    "outputs": result.outputs,
                }
                for result in results
            ],
            indent=2,
        )
    )
