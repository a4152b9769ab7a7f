"""Provision the twin's three accounts from infra/templates, as `mlops infra deploy` does in the cloud.

Each account's stacks (the shared one, then one per use case of model_build/use_cases) are deployed through
moto's CloudFormation with the same code (`deploy_stack`, change sets) and the same parameters (mlops.yaml
through `stack_spec` and `use_case_stack_spec`), by the account's administrator: the twin's
root credentials of that account (`root_access_key`), the stand-in for whoever runs the infrastructure
pipeline. What moto's CloudFormation skips is created from the template's own properties (moto_gaps.py).

The Azure DevOps side is stood in for by an OIDC issuer the twin owns (mlops/local/oidc.py): a key generated
here, the issuer `https://vstoken.dev.azure.com/<organization id>` given to the templates as
AzureDevOpsOrganizationId, so the templates' own OIDC provider and trust policies are the ones exercised.

Where the twin still differs from AWS it says so, one line per known gap, and nothing else differs.
"""

from __future__ import annotations

import hashlib
import io
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions

from mlops.core.aws import error_message
from mlops.core.config import Config
from mlops.core.identities import identities, role_arn
from mlops.infra.deploy import DeployResult, deploy_stack, stack_outputs
from mlops.infra.moto_gaps import supplement
from mlops.infra.templates import (
    ACCOUNTS,
    AccountName,
    StackSpec,
    organization_name,
    stack_spec,
    use_case_names,
    use_case_stack_spec,
)
from mlops.local.errors import TwinError
from mlops.local.oidc import Issuer, write_connection_roles
from mlops.local.twin_state import root_access_key as root_access_key

BRIDGE_SOURCE = Path(__file__).resolve().parents[3] / "infra" / "bridge" / "mlops_bridge"
# The template's approval rule and its Lambda target (infra/templates/automation.yaml).
APPROVAL_RULE = "mlops-bridge-approvals"
# The retrain rule (day 2): a stage's drift alarm -> the same bridge Lambda, so the same stand-in queue.
RETRAIN_RULE = "mlops-bridge-retrain"
BRIDGE_TARGET_ID = "bridge"
# The twin's stand-in for the bridge Lambda as the rule's target: moto's EventBridge cannot invoke Lambda.
APPROVAL_QUEUE = "mlops-approvals"
ROOT_SECRET = "twin"  # noqa: S105 - the twin accepts any secret; this one is public by design

KNOWN_GAPS = (
    "approval rule mlops-bridge-approvals and retrain rule mlops-bridge-retrain deliver to the SQS queue "
    "mlops-approvals instead of the mlops-bridge Lambda (moto's EventBridge cannot invoke Lambda); the demo runs "
    "the bridge's handler from that queue",
    "schedules do not fire in moto: the pending-approval reminder (rule mlops-bridge-reminders) never runs",
    "CloudWatch alarms are created, but moto never evaluates their metrics: the twin evaluates only the alarms on "
    "Model Monitor's metrics, after each monitoring execution (mlops/local/monitoring.py)",
    "the twin's endpoint is plain HTTP on 127.0.0.1 where AWS is HTTPS only: the templates' DenyInsecureTransport "
    "statements (aws:SecureTransport false) cannot be exercised",
    "the OIDC issuers vstoken.dev.azure.com/<organization id> and login.microsoftonline.com/<tenant>/v2.0 are the "
    "twin's own key (.mlops/twin/oidc), not Azure DevOps' or Entra's: STS in the twin verifies tokens against it",
    "model monitor: the twin keeps the monitoring schedules (moto has none) and runs their executions only "
    "when its clock is advanced (POST /_twin/monitoring/run?hours=N, `mlops demo --drift`), hourly schedules only",
)


def root_session(account: str, region: str) -> boto3.Session:
    """The account's administrator; the endpoint comes from AWS_ENDPOINT_URL, as for every client of the twin."""
    return boto3.Session(
        aws_access_key_id=root_access_key(account), aws_secret_access_key=ROOT_SECRET, region_name=region
    )


def organization_id(config: Config) -> str:
    """The twin's Azure DevOps organization id: a GUID, fixed for an organization URL."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, config.azure_devops.organization_url.rstrip("/")))


@dataclass(frozen=True)
class Bootstrapped:
    approval_queue_url: str
    bridge_dlq_url: str
    kms_key_arn: str
    gaps: list[str] = field(default_factory=list)


def bridge_code() -> tuple[str, bytes]:
    """The bridge's own source as a Lambda zip, under a content-addressed key (as `mlops bridge package`)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(BRIDGE_SOURCE.glob("*.py")):
            info = zipfile.ZipInfo(f"mlops_bridge/{path.name}", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, path.read_bytes())
    body = buffer.getvalue()
    return f"bridge/{hashlib.sha256(body).hexdigest()}/mlops-bridge-lambda.zip", body


def _upload_bridge_code(session: boto3.Session, bucket: str, region: str) -> str:
    key, body = bridge_code()
    s3 = session.client("s3")
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return key


def _overrides(
    config: Config, issuer: Issuer, account: AccountName, artifact_key_arn: str, code: tuple[str, str]
) -> dict[str, str]:
    common = {"AzureDevOpsOrganizationId": organization_id(config)}
    if config.azure_devops.oidc_issuer != "legacy":
        # What an operator copies from each service connection: its subject under the Entra issuer.
        who = identities(config)
        project = config.azure_devops.project

        def entra(purpose: str) -> str:
            return issuer.entra_subject(project, who.connection(purpose).name)

        if account == "automation":
            common |= {"BuildEntraSubject": entra("build"), "RegistryReadEntraSubject": entra("registry-read")}
        else:
            common["DeployEntraSubject"] = entra(f"deploy-{account}")
    if account == "automation":
        bucket, key = code
        return {**common, "BridgeCodeBucket": bucket, "BridgeCodeKey": key}
    return {**common, "ArtifactKeyArn": artifact_key_arn}


def _route_approvals_to_queue(session: boto3.Session) -> str:
    """Replace the rule's Lambda target with the twin's queue, keeping the template's retry and DLQ settings."""
    events = session.client("events")
    targets = events.list_targets_by_rule(Rule=APPROVAL_RULE)["Targets"]
    (bridge,) = [t for t in targets if t["Id"] == BRIDGE_TARGET_ID]
    sqs = session.client("sqs")
    queue_url = sqs.create_queue(QueueName=APPROVAL_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.remove_targets(Rule=APPROVAL_RULE, Ids=[BRIDGE_TARGET_ID])
    stand_in: dict[str, Any] = {"Id": BRIDGE_TARGET_ID, "Arn": queue_arn}
    stand_in.update({k: v for k, v in bridge.items() if k in ("RetryPolicy", "DeadLetterConfig")})
    events.put_targets(Rule=APPROVAL_RULE, Targets=[stand_in])  # type: ignore[list-item]
    # The retrain rule targets the same function: its events reach the same stand-in for the bridge.
    rules = {r["Name"] for r in events.list_rules(NamePrefix=RETRAIN_RULE).get("Rules", [])}
    if RETRAIN_RULE in rules:
        (retrain,) = [
            t for t in events.list_targets_by_rule(Rule=RETRAIN_RULE)["Targets"] if t["Id"] == BRIDGE_TARGET_ID
        ]
        events.remove_targets(Rule=RETRAIN_RULE, Ids=[BRIDGE_TARGET_ID])
        stand_in = {"Id": BRIDGE_TARGET_ID, "Arn": queue_arn}
        stand_in.update({k: v for k, v in retrain.items() if k in ("RetryPolicy", "DeadLetterConfig")})
        events.put_targets(Rule=RETRAIN_RULE, Targets=[stand_in])  # type: ignore[list-item]
    return str(queue_url)


def bootstrap(
    config: Config,
    automation: boto3.Session,
    *,
    directory: Path,
    progress: Callable[[str], None] = lambda _m: None,
    automation_ready: Callable[[Bootstrapped], None] = lambda _made: None,
) -> Bootstrapped:
    """Provision the three accounts from infra/templates, one account at a time, the automation account first.

    `automation_ready` is called once the automation account is complete (its stacks, its access stack, the
    connection roles and the approval rule's queue), before the staging and prod accounts: a build needs
    nothing else, so `mlops demo` starts it then (the gaps it is given are the automation account's only).
    """
    region = config.region
    del automation  # the stacks are deployed by each account's root session, the automation one included
    issuer = Issuer.create(
        directory,
        organization_id(config),
        organization_name(config.azure_devops.organization_url),
        config.azure_devops.project,
        config.azure_devops.entra_tenant_id or "",
    )
    sessions = {account: root_session(account, region) for account in ACCOUNTS}
    code_bucket = f"mlops-bridge-code-{config.accounts.automation.id}-{region}"
    code = (code_bucket, _upload_bridge_code(sessions["automation"], code_bucket, region))
    gaps: list[str] = []
    artifact_key_arn = ""
    bridge_dlq_url = ""
    queue_url = ""
    # Each service connection and the role it is configured with (mlops/core/identities.py); under "both"
    # the twin's connections present Entra tokens, and the legacy path is tested on its own.
    entra = config.azure_devops.oidc_issuer != "legacy"
    started = time.perf_counter()
    for account in ACCOUNTS:
        spec = stack_spec(config, account, _overrides(config, issuer, account, artifact_key_arn, code))
        session = sessions[account]
        result = _deploy(session, spec, account, directory)
        done = supplement(session, spec, progress=lambda _m: None)
        gaps += done.gaps
        if account == "automation":
            physical = _physical_ids(session, spec.stack_name)
            kms = session.client("kms")
            artifact_key_arn = str(kms.describe_key(KeyId=physical["ArtifactKey"])["KeyMetadata"]["Arn"])
            bridge_dlq_url = physical["BridgeDlq"]
        progress(
            f"{spec.stack_name}: {result.outcome} from {spec.template_path.name}, {len(done.created)} twin addition(s)"
        )
        # Then each use case's stack, on the shared stack's roles and outputs (as `mlops infra deploy` does).
        account_started = time.perf_counter()
        outputs = stack_outputs(session.client("cloudformation"), spec.stack_name)
        names = use_case_names(config)
        for name in names:
            use_case = use_case_stack_spec(config, account, name, outputs)
            _deploy(session, use_case, account, directory)
            gaps += supplement(session, use_case, progress=lambda _m: None).gaps
        # Then the account's access stack (access.yaml), as its administrator deploys it once after the mlops stack.
        access: dict[str, str] = {"AzureDevOpsOrganizationId": organization_id(config)}
        if entra:
            infra = identities(config).connection(f"infra-{account}").name
            access["InfraEntraSubject"] = issuer.entra_subject(config.azure_devops.project, infra)
        _deploy(session, stack_spec(config, account, access, access=True), account, directory)
        progress(
            f"{account}: {len(names)} use case stack(s) from use-case.yaml and the access stack "
            f"(infrastructure connection role) in {time.perf_counter() - account_started:.2f}s"
        )
        if account == "automation":
            write_connection_roles(
                directory,
                {
                    c.name: {"account": c.account, "role_arn": role_arn(config, c), "entra": entra}
                    for c in identities(config).connections
                },
            )
            try:
                queue_url = _route_approvals_to_queue(session)
            except (botocore.exceptions.ClientError, ValueError) as exc:
                message = error_message(exc) if isinstance(exc, botocore.exceptions.ClientError) else str(exc)
                raise TwinError(
                    f"the twin could not route the approval rule {APPROVAL_RULE} to its queue: {message}"
                ) from exc
            automation_ready(
                Bootstrapped(
                    approval_queue_url=queue_url,
                    bridge_dlq_url=bridge_dlq_url,
                    kms_key_arn=artifact_key_arn,
                    gaps=[*KNOWN_GAPS, *gaps],
                )
            )
    gaps = [*KNOWN_GAPS, *gaps]
    progress(f"three accounts provisioned from infra/templates in {time.perf_counter() - started:.1f}s")
    for gap in gaps:
        progress(f"known gap: {gap}")
    return Bootstrapped(
        approval_queue_url=queue_url, bridge_dlq_url=bridge_dlq_url, kms_key_arn=artifact_key_arn, gaps=gaps
    )


def _deploy(session: boto3.Session, spec: StackSpec, account: str, directory: Path) -> DeployResult:
    """One stack through moto's CloudFormation, as the account's administrator deploys it."""
    try:
        return deploy_stack(
            session.client("cloudformation"), spec, poll_seconds=0.05, timeout_seconds=60, progress=lambda _m: None
        )
    except Exception as exc:
        raise TwinError(
            f"the twin could not deploy {spec.template_path.name} into the {account} account: {exc}",
            hint=f"see {directory}/server.log; `mlops infra lint` checks the template",
        ) from exc


def _physical_ids(session: boto3.Session, stack: str) -> dict[str, Any]:
    summaries = session.client("cloudformation").list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return {s["LogicalResourceId"]: s.get("PhysicalResourceId", "") for s in summaries if s["LogicalResourceId"]}
