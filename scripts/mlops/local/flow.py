"""`mlops demo`: the whole cross-cloud flow on this machine, driven by the real pipeline files.

    mlops ado apply (fake Azure DevOps) -> twin up -> model-build.yml (local runner) -> approve the
    package -> registry event -> bridge Lambda handler -> fake Azure DevOps (Runs API) -> model-deploy.yml
    (local runner, under the project's checks): verify, staging deploy and tests, prod approval (through
    the fake's approvals API), prod deploy, smoke tests -> report

Every arrow is the real thing: the bridge is `mlops_bridge.handler.handler` reading the event from the
approval rule's queue (the Lambda's trigger in AWS), the Runs API call is the azure-devops SDK over
HTTP, and the runner executes our YAML, whose steps call `mlops`. The twin is left running at the end
so its endpoints can be invoked (`eval "$(mlops local env --account prod)"`); `mlops local down` stops it.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from mlops.core.config import Config
from mlops.core.errors import MlopsError
from mlops.core.identities import identities
from mlops.core.use_cases import quality_metrics
from mlops.local.ado_checks import FakeProjectChecks, fake_approver, webhook_pipelines
from mlops.local.bootstrap import APPROVAL_RULE
from mlops.local.fake_ado import FakeAzureDevOps, WebhookDelivery
from mlops.local.twin import TwinState, automation_session, down, environment, up
from mlops.pipelines.results import RunEvent, RunResult

DEPLOY_PIPELINE = "azure-pipelines/model-deploy.yml"
WEBHOOK_PIPELINE = "azure-pipelines/model-deploy-webhook.yml"
BUILD_PIPELINE = "azure-pipelines/model-build.yml"
ORGANIZATION = "local-org"
PROD_ENVIRONMENT = "mlops-prod"
BRIDGE_FUNCTION = "mlops-bridge"  # infra/templates/automation.yaml BridgeFunction
WEBHOOK_NAME = "mlops-model-approved"  # azure-pipelines/model-deploy-webhook.yml resources.webhooks connection


def run_bridge(event: str, env: Mapping[str, str], what: str) -> str:
    """The bridge's handler on one event, as the Lambda runtime runs it (its own process); its last output line."""
    invocation = subprocess.run(
        [sys.executable, "-m", "mlops.local.lambda_invoke"],
        input=event,
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=120,
        check=False,
    )
    if invocation.returncode != 0:
        raise DemoError(
            f"the bridge Lambda failed on {what}: {invocation.stderr.strip().splitlines()[-1:]}",
            hint="the event stays on the queue; `mlops bridge replay` re-drives failed events",
        )
    return invocation.stdout.strip().splitlines()[-1]


class DemoError(MlopsError):
    """A stage of the demo flow failed; the message names it and why."""


@dataclass
class Stage:
    name: str
    status: str
    seconds: float
    detail: str = ""


def bridge_environment(
    automation: boto3.Session, config: Config, twin_url: str, twin_directory: Path, *, org_url: str, token: str
) -> dict[str, str]:
    """The bridge Lambda's environment as the template deploys it: its function's variables, the operator's
    Azure DevOps PAT in the template's (empty) secret (docs/setup.md), and its execution role's session."""
    from mlops.local.twin_state import service_access_key

    function = automation.client("lambda").get_function_configuration(FunctionName=BRIDGE_FUNCTION)
    variables = {k: str(v) for k, v in ((function.get("Environment") or {}).get("Variables") or {}).items()}
    automation.client("secretsmanager").put_secret_value(
        SecretId=variables["ADO_AUTH_SECRET_ARN"], SecretString=json.dumps({"type": "pat", "token": token})
    )
    # Lambda runs the handler with its execution role's credentials: the twin assumes the role as the
    # Lambda service principal, which is all the role's trust policy admits.
    as_lambda = boto3.Session(
        aws_access_key_id=service_access_key("lambda"),
        aws_secret_access_key="twin",  # noqa: S106 - the twin accepts any secret
        region_name=config.region,
    )
    credentials = as_lambda.client("sts", endpoint_url=twin_url).assume_role(
        RoleArn=function["Role"], RoleSessionName=BRIDGE_FUNCTION
    )["Credentials"]
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k.startswith("AWS_ENDPOINT_URL")},
        **variables,
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
        "AWS_DEFAULT_REGION": config.region,
        "AWS_REGION": config.region,
        # The fake Azure DevOps listens on a free loopback port, not at the template's AdoOrgUrl, and the
        # Azure DevOps SDK's cache goes under the twin directory instead of the function's /tmp.
        "ADO_ORG_URL": org_url,
        "AZURE_DEVOPS_CACHE_DIR": str(twin_directory / "azure-devops-cache"),
    }


@dataclass
class FlowReport:
    stages: list[Stage] = field(default_factory=list)
    model_package_arn: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    endpoints: list[dict[str, str]] = field(default_factory=list)
    total_seconds: float = 0.0
    # Every step of the pipeline runs: where the time went, and which steps started a process.
    pipeline_steps: list[dict[str, Any]] = field(default_factory=list)
    mlflow_url: str | None = None  # the twin's MLflow UI
    mlflow_run_url: str | None = None  # the build's run in it (the package links to it)

    def to_json(self) -> dict[str, Any]:
        return {
            "stages": [{"name": s.name, "status": s.status, "seconds": round(s.seconds, 3)} for s in self.stages],
            "model_package_arn": self.model_package_arn,
            "metrics": self.metrics,
            "endpoints": self.endpoints,
            "total_seconds": round(self.total_seconds, 3),
            "pipeline_steps": self.pipeline_steps,
            "mlflow_url": self.mlflow_url,
            "mlflow_run_url": self.mlflow_run_url,
        }

    def add_steps(self, result: RunResult) -> None:
        for stage in result.stages:
            for job in stage.jobs:
                for step in job.steps:
                    self.pipeline_steps.append(
                        {
                            "pipeline": result.pipeline,
                            "stage": stage.name,
                            "job": job.name,
                            "step": step.display_name,
                            "status": step.status,
                            "seconds": round(step.seconds, 3),
                            "process": step.exit_code is not None,  # a script or task that ran bash
                        }
                    )


class Flow:
    def __init__(
        self,
        config: Config,
        *,
        repo_root: Path,
        twin_directory: Path,
        approve_prod: Callable[[str], bool],
        progress: Callable[[str], None],
        trigger: str = "runs_api",
    ) -> None:
        """trigger: how the bridge starts the deploy (its ADO_TRIGGER): `runs_api` (model-deploy.yml through the
        Runs API) or `webhook` (an HMAC-signed incoming webhook that starts model-deploy-webhook.yml)."""
        if trigger not in ("runs_api", "webhook"):
            raise DemoError(f"unknown trigger {trigger!r}", hint="use runs_api or webhook")
        self.trigger = trigger
        self.config = config
        self.repo_root = repo_root
        self.twin_directory = twin_directory
        self.approve_prod = approve_prod
        self.progress = progress
        self.report = FlowReport()
        self._runs: queue.Queue[Any] = queue.Queue()
        self._state: TwinState | None = None
        self._automation: boto3.Session | None = None
        self._fake: FakeAzureDevOps | None = None
        self._bridge_env: concurrent.futures.Future[dict[str, str]] | None = None
        self._twin_done = threading.Event()
        self._automation_up = threading.Event()  # the automation account is provisioned: a build can start
        self._twin_failure: BaseException | None = None
        self._ado_token = "twin-pat-" + os.urandom(8).hex()

    def _stage(self, name: str, action: Callable[[], str]) -> None:
        self.progress(f"==> {name}")
        started = time.perf_counter()
        try:
            detail = action()
        except BaseException as exc:
            self.report.stages.append(Stage(name, "Failed", time.perf_counter() - started, str(exc).splitlines()[0]))
            raise
        seconds = time.perf_counter() - started
        self.report.stages.append(Stage(name, "Succeeded", seconds, detail))
        self.progress(f"    {name}: succeeded in {seconds:.1f}s{(' - ' + detail) if detail else ''}")

    # ------------------------------------------------------------------------------------ run

    def run(self) -> FlowReport:
        started = time.perf_counter()
        # The twin comes up beside the build pipeline's first stage (YAML validation and the definition
        # render need no AWS); the first step that uses a service connection waits for it.
        os.environ["MLOPS_TWIN_DIR"] = str(self.twin_directory)
        os.environ["MLOPS_PROFILE"] = "local"
        twin = threading.Thread(target=self._twin_up_in_background, name="twin-up", daemon=True)
        twin.start()
        try:
            self._stage("Azure DevOps project (mlops ado apply)", self._ado_setup)
            self._stage("Build pipeline (model-build.yml)", self._build)
            self._stage("Approve the model package", self._approve)
            self._stage("Registry event -> bridge -> Azure DevOps run", self._bridge)
            deploy_file = Path(DEPLOY_PIPELINE if self.trigger == "runs_api" else WEBHOOK_PIPELINE).name
            self._stage(f"Deploy pipeline ({deploy_file})", self._deploy)
            self._collect_endpoints()
        finally:
            twin.join()
            self.report.total_seconds = time.perf_counter() - started
            if self._fake is not None:
                self._fake.stop()
        return self.report

    def _ado_setup(self) -> str:
        """The fake organization, set up as users set up theirs: `mlops ado apply` through the SDK."""
        from msrest.authentication import BasicAuthentication

        from mlops.ado.desired import desired
        from mlops.ado.plan import make_plan
        from mlops.ado.project import AdoProject

        os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", str(self.twin_directory / "azure-devops-cache"))
        want = desired(self.config)
        self._fake = FakeAzureDevOps(
            ORGANIZATION,
            pat=self._ado_token,
            on_trigger=self._runs.put,
            project=self.config.azure_devops.project,
            # In memory: the twin coming up beside this stage starts from an empty directory (`down`), and the
            # demo shows a first setup; the fake's JSON store is for organizations that outlive one run.
            store=None,
            identities=(want.approvers,),
        ).start()
        project = AdoProject(self._fake.org_url, want.project, BasicAuthentication("", self._ado_token))
        current = project.read(want)
        plan = make_plan(want, current)
        project.apply(want, plan, current, lambda _line: None)
        return f"{len(plan.actions)} changes in {self._fake.org_url}/{want.project}"

    def _twin_up_in_background(self) -> None:
        try:
            self._stage("Twin up", self._twin_up)
        except BaseException as exc:  # handed to whoever waits for the twin (_wait_for_twin)
            self._twin_failure = exc
        finally:
            self._automation_up.set()
            self._twin_done.set()

    def _wait_for_twin(self, *, automation_only: bool = False) -> None:
        """Until the twin is up, or with `automation_only` until its automation account is (raises why not)."""
        (self._automation_up if automation_only else self._twin_done).wait()
        if self._twin_failure is not None:
            raise DemoError(
                f"the twin did not come up: {str(self._twin_failure).splitlines()[0]}",
                hint=f"see {self.twin_directory / 'server.log'}",
            ) from self._twin_failure

    def _twin_up(self) -> str:
        down(self.twin_directory)  # a fresh twin: the demo shows the first run, not a cached one
        # The build starts once the automation account is provisioned; staging and prod follow beside it. MLflow
        # starts with the twin, at the lowest CPU priority (mlops.local.mlflow_server).
        state, _ = up(
            self.config,
            self.twin_directory,
            time_scale=0.001,
            progress=self.progress,
            automation_ready=self._on_automation_ready,
        )
        return state.url

    def _on_automation_ready(self, state: TwinState) -> None:
        self._state = state
        self._automation = automation_session(state.url, self.config.region)
        os.environ.update(environment(state, "automation"))
        self._automation_up.set()

    def _connection_ready(self, name: str) -> None:
        """A service connection of the automation account is usable once that account is; the others wait for
        the whole twin."""
        connection = identities(self.config).by_name(name)
        self._wait_for_twin(automation_only=connection is not None and connection.account == "automation")

    @property
    def state(self) -> TwinState:
        if self._state is None:
            raise DemoError("the twin is not up yet", hint="the flow starts it in its first stage")
        return self._state

    @property
    def automation(self) -> boto3.Session:
        if self._automation is None:
            raise DemoError("the twin is not up yet", hint="the flow starts it in its first stage")
        return self._automation

    def _runner_kwargs(self) -> dict[str, Any]:
        from mlops.local.pipeline_credentials import TwinServiceConnections

        bin_dir = str(Path(sys.executable).parent)
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        return {
            "sources_dir": self.repo_root,
            "service_connections": TwinServiceConnections(self.twin_directory, twin_ready=self._connection_ready),
            "env": env,
            "progress": self._runner_progress,
        }

    def _runner_progress(self, event: RunEvent) -> None:
        kind = event.kind
        text = event.text
        if kind in ("stage_started", "stage_finished", "step_finished", "approval", "issue"):
            indent = "      " if kind.startswith("step") else "    "
            self.progress(f"{indent}{text}")

    def _build(self) -> str:
        from mlops.pipelines.runner import run_pipeline

        fake = self._fake
        if fake is None or fake.project is None:
            raise DemoError("the fake Azure DevOps project is not set up", hint="the flow sets it up first")
        # The bridge Lambda's environment needs only the twin and the organisation: prepared beside the build (about
        # 1 s of calls into a twin that is busy right after an approval), not between the approval and the bridge.
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="bridge-env")
        self._bridge_env = pool.submit(self._prepare_bridge_environment, fake.org_url)
        pool.shutdown(wait=False)
        result = run_pipeline(
            self.repo_root / BUILD_PIPELINE,
            {"runChecks": "false", "waitTimeoutSeconds": "600", "useCase": self.config.use_case.name},
            variables={
                "Build.SourceBranch": "refs/heads/main",
                "Build.SourceBranchName": "main",
                "Build.Reason": "Manual",
            },
            # The build, too, may use only what `mlops ado apply` authorised it for (aws-build, no environment).
            project=FakeProjectChecks(fake.project, BUILD_PIPELINE),
            **self._runner_kwargs(),
        )
        self.report.add_steps(result)
        self._wait_for_twin()  # a build that failed because the twin did not come up says so
        if result.status.lower() not in ("succeeded", "succeededwithissues"):
            raise DemoError(f"model-build.yml ended {result.status}", hint="see the step output above")
        sm = self.automation.client("sagemaker")
        packages = sm.list_model_packages(
            ModelPackageGroupName=self.config.build.model_package_group, SortBy="CreationTime", SortOrder="Descending"
        )["ModelPackageSummaryList"]
        if not packages:
            raise DemoError("the build registered no model package", hint="see the pipeline execution's steps above")
        self.report.model_package_arn = packages[0]["ModelPackageArn"]
        self.report.metrics = self._metrics(sm, self.report.model_package_arn)
        return f"{self.report.model_package_arn} " + " ".join(f"{k}={v:.4f}" for k, v in self.report.metrics.items())

    def _prepare_bridge_environment(self, org_url: str) -> dict[str, str]:
        self._wait_for_twin(automation_only=True)  # the bridge Lambda lives in the automation account
        return bridge_environment(
            self.automation, self.config, self.state.url, self.twin_directory, org_url=org_url, token=self._ado_token
        )

    def _metrics(self, sm: Any, arn: str) -> dict[str, float]:
        package = sm.describe_model_package(ModelPackageName=arn)
        self._note_mlflow_run(package.get("CustomerMetadataProperties", {}))
        uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3 = self.automation.client("s3")
        report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return quality_metrics(report, self.config.use_case.task)

    def _note_mlflow_run(self, metadata: dict[str, str]) -> None:
        from model_build.tracking import EXPERIMENT_ID_KEY, RUN_ID_KEY, run_url

        self.report.mlflow_url = self.state.mlflow_url or None
        if self.state.mlflow_url and RUN_ID_KEY in metadata:
            self.report.mlflow_run_url = run_url(
                self.state.mlflow_url, metadata.get(EXPERIMENT_ID_KEY, "0"), metadata[RUN_ID_KEY]
            )

    def _approve(self) -> str:
        from mlops.registry import set_status

        sm = self.automation.client("sagemaker")
        arn = self.report.model_package_arn
        package = dict(sm.describe_model_package(ModelPackageName=str(arn)))
        set_status(sm, package, "Approved", "approved by `mlops demo`")
        return "Approved"

    def _bridge(self) -> str:
        """The bridge as the template deploys it: its function's environment, secret, table and role."""
        session = self.automation
        deploy_id = self.config.azure_devops.pipelines.deploy
        fake = self._fake
        if fake is None:
            raise DemoError("the fake Azure DevOps is not up", hint="the flow starts it in its first stage")
        if self._bridge_env is None:
            raise DemoError("the bridge Lambda's environment was not prepared", hint="the build stage prepares it")
        # Prepared beside the build (_build); its failure (the twin's, a refused call) is raised here.
        lambda_env = dict(self._bridge_env.result())
        if self.trigger == "webhook":
            # The organisation's incoming webhook service connection and the bridge's shared secret.
            hmac_secret = os.urandom(16).hex()
            fake.register_webhook(WEBHOOK_NAME, secret=hmac_secret)
            session.client("secretsmanager").put_secret_value(
                SecretId=lambda_env["ADO_AUTH_SECRET_ARN"],
                SecretString=json.dumps({"type": "webhook", "hmac_secret": hmac_secret}),
            )
            lambda_env.update({"ADO_TRIGGER": "webhook", "ADO_WEBHOOK_NAME": WEBHOOK_NAME})
        sqs = session.client("sqs")
        messages = sqs.receive_message(
            QueueUrl=self.state.approval_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages:
            raise DemoError(
                "the approval produced no event on the approval rule's queue",
                hint=f"check the rule {APPROVAL_RULE} in the twin (mlops local env; aws events list-targets-by-rule)",
            )
        for message in messages:
            self.progress(f"    bridge: {run_bridge(message['Body'], lambda_env, 'the approval event')}")
            sqs.delete_message(QueueUrl=self.state.approval_queue_url, ReceiptHandle=message["ReceiptHandle"])
        if self.trigger == "webhook":
            deliveries = fake.webhook_deliveries
            if len(deliveries) != 1:
                raise DemoError(f"expected exactly one webhook delivery, found {len(deliveries)}")
            return f"webhook {WEBHOOK_NAME} with {json.dumps(deliveries[0].payload)}"
        runs = fake.runs
        if len(runs) != 1:
            raise DemoError(f"expected exactly one Azure DevOps run, found {len(runs)}")
        return f"run {runs[0].id} of pipeline {deploy_id} with {json.dumps(runs[0].template_parameters)}"

    def _deploy(self) -> str:
        from mlops.pipelines.runner import run_pipeline

        trigger = self._runs.get(timeout=5)  # put there by the fake Azure DevOps when the bridge started the run
        if self._fake is None or self._fake.project is None:
            raise DemoError("the fake Azure DevOps project is not set up", hint="the flow sets it up first")
        store = self._fake.project
        if isinstance(trigger, WebhookDelivery):
            started = webhook_pipelines(store, self.repo_root, trigger.name, trigger.payload)
            if len(started) != 1:
                raise DemoError(
                    f"the webhook {trigger.name} should start exactly one pipeline, it starts {started or 'none'}",
                    hint=f"declare it under resources.webhooks of one pipeline ({WEBHOOK_PIPELINE})",
                )
            pipeline_file, alias = started[0]
            parameters: dict[str, str] = {}
            payloads: dict[str, Any] = {alias: trigger.payload}
            branch = self.config.azure_devops.setup.default_branch  # a webhook cannot choose a branch
            run_id = None
        else:
            pipeline_file, parameters, payloads = DEPLOY_PIPELINE, dict(trigger.template_parameters), {}
            branch = trigger.ref_name or "refs/heads/main"  # the branch the run was queued on
            run_id = trigger.id
        # Only environments with an approval check ask (prod); the answer goes through the approvals API.
        checks = FakeProjectChecks(store, pipeline_file)  # connections and environments, as `ado apply` set them
        result = run_pipeline(
            self.repo_root / pipeline_file,
            parameters,
            approve=fake_approver(store, self._answer_approval),
            project=checks,
            variables={"Build.SourceBranch": branch},
            webhook_payloads=payloads,
            **self._runner_kwargs(),
        )
        self.report.add_steps(result)
        status = result.status
        if run_id is not None:  # report the outcome back on the run, as Azure DevOps shows it
            self._fake.set_run_state(run_id, "completed", "succeeded" if status.lower() == "succeeded" else "failed")
        if status.lower() != "succeeded":
            raise DemoError(f"{Path(pipeline_file).name} ended {status}", hint="see the stage output above")
        return status

    def _answer_approval(self, approval: dict[str, Any]) -> None:
        """The approver's answer, through Approvals - Update of the fake's REST API (as a person in the UI)."""
        import base64
        import urllib.request

        environment = str(approval["pipeline"]["environment"])
        status = "approved" if self.approve_prod(environment) else "rejected"
        if self._fake is None:
            raise DemoError("the fake Azure DevOps is not up")
        request = urllib.request.Request(  # noqa: S310 - the loopback fake's http URL
            f"{self._fake.org_url}/{self.config.azure_devops.project}/_apis/pipelines/approvals"
            "?api-version=7.1-preview.1",
            data=json.dumps([{"approvalId": approval["id"], "status": status, "comment": "mlops demo"}]).encode(),
            method="PATCH",
            headers={
                "Content-Type": "application/json",
                "Authorization": "Basic " + base64.b64encode(f":{self._ado_token}".encode()).decode(),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the loopback fake
            response.read()

    def _collect_endpoints(self) -> None:
        for stage_name in ("staging", "prod"):
            settings = self.config.deploy.stage(stage_name)
            account = getattr(self.config.accounts, settings.account).id
            env = environment(self.state, stage_name)
            client = boto3.client(
                "sagemaker",
                endpoint_url=self.state.url,
                region_name=self.config.region,
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=env.get("AWS_SESSION_TOKEN"),
            )
            for endpoint in client.list_endpoints()["Endpoints"]:
                self.report.endpoints.append(
                    {
                        "stage": stage_name,
                        "account": account,
                        "name": endpoint["EndpointName"],
                        "status": endpoint["EndpointStatus"],
                    }
                )
