"""`mlops infra deploy`: create or update one account's stack through a change set.

Create the change set, wait for it (bounded), print it, then execute it unless it is a dry run, and wait for
the stack (bounded). An empty change set means "no changes", not an error. A failed change set or a failed
execution is an error that carries CloudFormation's reason and the resources that failed. The clock and the
sleep are injected, so the polling is tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions

from mlops.core.aws import error_code, error_message
from mlops.core.errors import InfraError
from mlops.infra.templates import Change, StackSpec, changes_of, load_template, parameter_list, template_body

NO_CHANGES_REASONS = ("didn't contain changes", "No updates are to be performed")
STABLE = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
FAILED = frozenset(
    {
        "CREATE_FAILED",
        "ROLLBACK_COMPLETE",
        "ROLLBACK_FAILED",
        "UPDATE_FAILED",
        "UPDATE_ROLLBACK_COMPLETE",
        "UPDATE_ROLLBACK_FAILED",
        "DELETE_FAILED",
        "DELETE_COMPLETE",
    }
)
# A stack in one of these cannot take a change set; what to do about each.
BLOCKED = {
    "ROLLBACK_COMPLETE": "its first creation failed and was rolled back; delete the stack, then deploy again",
    "ROLLBACK_FAILED": "its first creation failed and could not be rolled back; fix and delete the stack",
    "UPDATE_ROLLBACK_FAILED": "continue the rollback (aws cloudformation continue-update-rollback), then deploy",
    "DELETE_FAILED": "its deletion failed; finish deleting it, then deploy again",
}


@dataclass
class DeployResult:
    stack_name: str
    outcome: str  # "no changes" | "dry run" | the final stack status
    change_set_name: str | None = None
    changes: list[Change] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def executed(self) -> bool:
        return self.outcome in STABLE


def check_account(sts: Any, spec: StackSpec) -> None:
    """Refuse to deploy an account's stack with another account's credentials."""
    try:
        found = str(sts.get_caller_identity()["Account"])
    except botocore.exceptions.ClientError as exc:
        raise InfraError(
            f"could not tell which AWS account the credentials belong to: {error_message(exc)}",
            hint="provide credentials (the service connection, or `mlops local env`) and retry",
        ) from exc
    if found != spec.account_id:
        raise InfraError(
            f"the credentials are for account {found}, but {spec.stack_name} belongs to the {spec.account} account "
            f"{spec.account_id} (mlops.yaml accounts.{spec.account}.id)",
            hint=f"run with the {spec.account} account's service connection, or pass --role-arn to assume a role there",
        )


def _describe_stack(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ValidationError" and "does not exist" in error_message(exc):
            return None
        raise InfraError(f"could not describe stack {name}: {error_message(exc)}") from exc
    return dict(stacks[0]) if stacks else None


def stack_outputs(cfn: Any, name: str) -> dict[str, str]:
    """The outputs of an existing stack; a missing stack is an error saying what to deploy first."""
    stack = _describe_stack(cfn, name)
    if stack is None or stack["StackStatus"] in ("DELETE_COMPLETE", "REVIEW_IN_PROGRESS"):
        raise InfraError(
            f"stack {name} does not exist: the use cases' stacks name its roles and outputs",
            hint=f"deploy it first: `mlops infra deploy --account {name.removeprefix('mlops-')}`",
        )
    return {str(o["OutputKey"]): str(o["OutputValue"]) for o in stack.get("Outputs") or []}


def deploy_stack(
    cfn: Any,
    spec: StackSpec,
    *,
    dry_run: bool = False,
    timeout_seconds: float = 1800,
    poll_seconds: float = 5,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    progress: Callable[[str], None] = print,
    role_arn: str | None = None,
) -> DeployResult:
    """`role_arn`: CloudFormation carries the change set out as this role (RoleARN), not as the caller."""
    body = template_body(spec.template_path)
    declared = load_template(spec.template_path).get("Parameters") or {}
    stack = _describe_stack(cfn, spec.stack_name)
    if stack and stack["StackStatus"] == "DELETE_COMPLETE":  # a deleted stack is no stack (moto lists them)
        stack = None
    status = str(stack["StackStatus"]) if stack else None
    if status in BLOCKED:
        raise InfraError(
            f"stack {spec.stack_name} is {status}: expected no stack or a stable one; {BLOCKED[status]}",
            hint=f"aws cloudformation describe-stack-events --stack-name {spec.stack_name} shows what failed",
        )
    if status and status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        raise InfraError(
            f"stack {spec.stack_name} is {status}: another operation is running on it",
            hint="wait for it to finish (see the CloudFormation console), then deploy again",
        )
    creating = status in (None, "REVIEW_IN_PROGRESS")
    previous = (
        frozenset() if creating or stack is None else frozenset(p["ParameterKey"] for p in stack.get("Parameters", []))
    )
    parameters, missing = parameter_list(spec, declared, previous)
    if missing:
        raise InfraError(
            f"{spec.template_path.name} needs {', '.join(missing)} for stack {spec.stack_name}: "
            "no value in mlops.yaml, on the command line or in the existing stack",
            hint=" ".join(f"--parameter {name}=..." for name in missing) + " (see docs/setup.md)",
        )

    change_set = f"mlops-{now():%Y%m%d-%H%M%S}"
    try:
        cfn.create_change_set(
            StackName=spec.stack_name,
            ChangeSetName=change_set,
            ChangeSetType="CREATE" if creating else "UPDATE",
            TemplateBody=body,
            Parameters=parameters,
            Capabilities=["CAPABILITY_NAMED_IAM"],
            **({"RoleARN": role_arn} if role_arn else {}),
            Description=f"mlops infra deploy --account {spec.account}",
            Tags=[{"Key": "mlops:managed-by", "Value": "mlops-infra"}, {"Key": "mlops:account", "Value": spec.account}],
        )
    except botocore.exceptions.ClientError as exc:
        # Some CloudFormation implementations refuse an empty change set at creation instead of failing it.
        if any(marker in error_message(exc) for marker in NO_CHANGES_REASONS):
            progress(f"{spec.stack_name}: no changes")
            return DeployResult(spec.stack_name, "no changes")
        raise InfraError(
            f"could not create a change set for stack {spec.stack_name}: {error_message(exc)}",
            hint="check the parameters shown by `mlops infra deploy --dry-run` and the deploying role's permissions",
        ) from exc

    deadline = clock() + timeout_seconds
    described = _wait_for_change_set(cfn, spec.stack_name, change_set, deadline, poll_seconds, sleep, clock)
    if described["Status"] == "FAILED":
        reason = str(described.get("StatusReason", "no reason given"))
        _delete_change_set(cfn, spec.stack_name, change_set)
        if any(marker in reason for marker in NO_CHANGES_REASONS):
            progress(f"{spec.stack_name}: no changes")
            return DeployResult(spec.stack_name, "no changes")
        raise InfraError(
            f"change set {change_set} for stack {spec.stack_name} failed: {reason}",
            hint="fix the template or parameters it names; `mlops infra lint` catches most template errors",
        )
    changes = changes_of(described)
    progress(
        f"{spec.stack_name}: change set {change_set} ({'create' if creating else 'update'}), {len(changes)} change(s)"
    )
    for change in changes:
        progress(change.describe())

    if dry_run:
        _delete_change_set(cfn, spec.stack_name, change_set)
        if creating:
            # A change set of type CREATE leaves an empty stack in REVIEW_IN_PROGRESS: a dry run leaves nothing.
            _delete_review_stack(cfn, spec.stack_name)
        progress(f"{spec.stack_name}: dry run, nothing executed")
        return DeployResult(spec.stack_name, "dry run", change_set, changes)

    try:
        cfn.execute_change_set(StackName=spec.stack_name, ChangeSetName=change_set)
    except botocore.exceptions.ClientError as exc:
        raise InfraError(
            f"could not execute change set {change_set} on {spec.stack_name}: {error_message(exc)}"
        ) from exc
    change_set_id = str(described.get("ChangeSetId", ""))
    final = _wait_for_stack(cfn, spec.stack_name, change_set_id, deadline, poll_seconds, sleep, clock, timeout_seconds)
    final_status = str(final["StackStatus"])
    if final_status not in STABLE:
        raise InfraError(
            f"stack {spec.stack_name} ended {final_status} after executing {change_set}: "
            f"{_failed_resources(cfn, spec.stack_name)}",
            hint="fix the resources named above, then deploy again",
        )
    outputs = {str(o["OutputKey"]): str(o["OutputValue"]) for o in final.get("Outputs") or []}
    progress(f"{spec.stack_name}: {final_status}")
    return DeployResult(spec.stack_name, final_status, change_set, changes, outputs)


def _wait_for_change_set(
    cfn: Any,
    stack: str,
    name: str,
    deadline: float,
    poll_seconds: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> dict[str, Any]:
    while True:
        described = _describe_change_set(cfn, stack, name)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return described
        if clock() >= deadline:
            raise InfraError(
                f"change set {name} for {stack} is still {described['Status']} at the time limit",
                hint="raise --timeout, or look at the change set in the CloudFormation console",
            )
        sleep(poll_seconds)


def _describe_change_set(cfn: Any, stack: str, name: str) -> dict[str, Any]:
    """The change set with all its changes (DescribeChangeSet pages them)."""
    try:
        described = dict(cfn.describe_change_set(StackName=stack, ChangeSetName=name))
        token = described.get("NextToken")
        while token and described["Status"] == "CREATE_COMPLETE":
            page = cfn.describe_change_set(StackName=stack, ChangeSetName=name, NextToken=token)
            described["Changes"] = [*described.get("Changes", []), *page.get("Changes", [])]
            token = page.get("NextToken")
    except botocore.exceptions.ClientError as exc:
        raise InfraError(f"could not describe change set {name} of {stack}: {error_message(exc)}") from exc
    return described


def _wait_for_stack(
    cfn: Any,
    stack: str,
    change_set_id: str,
    deadline: float,
    poll_seconds: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    timeout_seconds: float,
) -> dict[str, Any]:
    while True:
        described = _describe_stack(cfn, stack)
        if described is None:
            raise InfraError(f"stack {stack} disappeared while its change set was executing")
        status = str(described["StackStatus"])
        # Until the stack reports our change set, a terminal status is the previous operation's.
        ours = described.get("ChangeSetId") in (None, change_set_id) or not change_set_id
        if ours and (status in STABLE or status in FAILED):
            return described
        if clock() >= deadline:
            raise InfraError(
                f"stack {stack} is still {status} after {timeout_seconds:.0f}s; CloudFormation carries on without us",
                hint=f"watch it with `aws cloudformation describe-stacks --stack-name {stack}`, or raise --timeout",
            )
        sleep(poll_seconds)


def _failed_resources(cfn: Any, stack: str, limit: int = 5) -> str:
    try:
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    except botocore.exceptions.ClientError as exc:
        return f"(could not read the stack events: {error_message(exc)})"
    failed = [
        f"{e['LogicalResourceId']} ({e.get('ResourceType', '?')}): {e.get('ResourceStatusReason', 'no reason given')}"
        for e in events
        if str(e.get("ResourceStatus", "")).endswith("FAILED")
    ]
    if not failed:
        return "no resource reported a failure"
    return "; ".join(reversed(failed[:limit]))  # events come newest first; the first failure explains the rest


def _delete_change_set(cfn: Any, stack: str, name: str) -> None:
    try:
        cfn.delete_change_set(StackName=stack, ChangeSetName=name)
    except botocore.exceptions.ClientError as exc:
        raise InfraError(
            f"could not delete change set {name} of {stack}: {error_message(exc)}",
            hint="delete it in the CloudFormation console; it changes nothing until executed",
        ) from exc


def _delete_review_stack(cfn: Any, stack: str) -> None:
    described = _describe_stack(cfn, stack)
    if described and described["StackStatus"] == "REVIEW_IN_PROGRESS":
        try:
            cfn.delete_stack(StackName=stack)
        except botocore.exceptions.ClientError as exc:
            raise InfraError(f"could not remove the empty review stack {stack}: {error_message(exc)}") from exc
