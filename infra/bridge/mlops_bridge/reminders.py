"""Pending-approval reminders: `mlops_bridge.reminders.handler`, run on a schedule (EventBridge Scheduler).

Finds packages of `MODEL_PACKAGE_GROUPS` that have waited in `PendingManualApproval` longer than
`REMINDER_MIN_AGE_HOURS` and publishes one SNS message per package to `REMINDER_TOPIC_ARN` - once, not on
every tick: each reminder is an idempotent action keyed by the package ARN. A failed publish leaves no
record (the next tick tries again); all packages are tried before the failures are raised together.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

from .errors import ReminderError
from .idempotency import REMINDER_PREFIX, RunOnce
from .log import logger
from .settings import ReminderSettings

PENDING = "PendingManualApproval"


@dataclass(frozen=True)
class PendingPackage:
    arn: str
    group: str
    version: int
    created: datetime

    def age_hours(self, now: datetime) -> float:
        return (now - self.created).total_seconds() / 3600


def overdue_packages(
    sagemaker: Any, groups: frozenset[str], *, now: datetime, min_age_seconds: float
) -> Iterator[PendingPackage]:
    cutoff = now - timedelta(seconds=min_age_seconds)
    paginator = sagemaker.get_paginator("list_model_packages")
    for group in sorted(groups):
        pages = paginator.paginate(
            ModelPackageGroupName=group, ModelApprovalStatus=PENDING, CreationTimeBefore=cutoff, SortBy="CreationTime"
        )
        for page in pages:
            for summary in page.get("ModelPackageSummaryList", []):
                created = summary["CreationTime"]
                created = created if created.tzinfo else created.replace(tzinfo=UTC)
                # Filter again here: the age rule is ours, whatever the API's filter did.
                if summary.get("ModelApprovalStatus") == PENDING and created <= cutoff:
                    yield PendingPackage(
                        arn=summary["ModelPackageArn"],
                        group=summary.get("ModelPackageGroupName", group),
                        version=int(summary.get("ModelPackageVersion", 0)),
                        created=created,
                    )


def reminder_message(package: PendingPackage, now: datetime) -> tuple[str, str]:
    subject = f"Model awaiting approval: {package.group} v{package.version}"[:100]
    body = (
        f"Model package {package.arn} has waited {package.age_hours(now):.0f} hours for approval "
        f"(registered {package.created:%Y-%m-%d %H:%M} UTC).\n\n"
        "Review it - metrics against the model in prod, its model card, top features, plots and MLflow run:\n"
        f"  mlops registry show {package.arn}\n"
        "then approve or reject it, saying why (kept on the package):\n"
        f'  mlops registry approve {package.arn} --reason "<why>"\n'
        f'  mlops registry reject {package.arn} --reason "<why>"\n\n'
        "Approving it starts the deploy pipeline in Azure DevOps. This is the only reminder for this package."
    )
    return subject, body


def send_reminders(
    settings: ReminderSettings, *, sagemaker: Any, sns: Any, run_once: RunOnce, now: datetime, context: Any = None
) -> dict[str, Any]:
    sent: list[str] = []
    already: list[str] = []
    failures: list[tuple[str, Exception]] = []
    for package in overdue_packages(
        sagemaker, settings.model_package_groups, now=now, min_age_seconds=settings.min_age_seconds
    ):
        subject, body = reminder_message(package, now)

        def publish(package: PendingPackage = package, subject: str = subject, body: str = body) -> dict[str, Any]:
            answer = sns.publish(
                TopicArn=settings.topic_arn,
                Subject=subject,
                Message=body,
                MessageAttributes={"modelPackageGroup": {"DataType": "String", "StringValue": package.group}},
            )
            return {"messageId": answer["MessageId"], "sentAt": now.isoformat()}

        try:
            _, published_now = run_once.run({"modelPackageArn": package.arn, "reminder": PENDING}, publish, context)
        except ClientError as exc:
            failures.append((package.arn, exc))
            continue
        (sent if published_now else already).append(package.arn)
    logger.info(f"reminders: {len(sent)} sent, {len(already)} sent before, {len(failures)} failed")
    if failures:
        listed = "; ".join(f"{arn}: {exc}" for arn, exc in failures)
        raise ReminderError(
            f"{len(failures)} reminder(s) could not be published to {settings.topic_arn}: {listed}",
            hint="check the topic and the role's sns:Publish; the next schedule tick retries them",
        ) from failures[0][1]
    return {"sent": sent, "alreadySent": already}


def handler(
    event: dict[str, Any],
    context: Any,
    *,
    environ: Mapping[str, str] | None = None,
    session: boto3.Session | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    settings = ReminderSettings.from_env(os.environ if environ is None else environ)
    session = session or boto3.Session()
    run_once = RunOnce(
        table=settings.idempotency_table,
        key_prefix=REMINDER_PREFIX,
        expires_after_seconds=settings.expiry_seconds,
        dynamodb=session.client("dynamodb"),
    )
    return send_reminders(
        settings,
        sagemaker=session.client("sagemaker"),
        sns=session.client("sns"),
        run_once=run_once,
        now=clock(),
        context=context,
    )
