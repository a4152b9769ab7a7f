"""An in-process twin (the same server `mlops local up` runs), shared by the tests of one module."""

from __future__ import annotations

import os
import socketserver
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.core.config import Config, load_config
from mlops.local.bootstrap import Bootstrapped, bootstrap, root_access_key, root_session
from mlops.local.oidc import connection_roles
from mlops.local.pipeline_credentials import connection_credentials
from mlops.local.server import TwinServer
from mlops.local.twin import TwinState

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = {"automation": "000000000001", "staging": "000000000002", "prod": "000000000003"}


@dataclass
class Twin:
    server: TwinServer
    config: Config
    made: Bootstrapped
    # The stacks each account had when bootstrap reported the automation account ready (`mlops demo` starts
    # the build then), and whether the connection roles and the approval queue were in place.
    at_automation_ready: dict[str, Any]

    def session(self, account: str = "automation") -> boto3.Session:
        # The account's administrator (the twin's root credentials of it), as `mlops local env --account` gives.
        return boto3.Session(
            aws_access_key_id=root_access_key(account), aws_secret_access_key="x", region_name=self.config.region
        )

    def client(self, service: str, account: str = "automation") -> Any:
        return self.session(account).client(service, endpoint_url=self.server.url)

    def connection_env(self, connection: str, *, entra: bool | None = None) -> dict[str, str]:
        """What a pipeline step gets through an Azure DevOps service connection: an OIDC role session."""
        state = TwinState(self.server.url, os.getpid(), self.config.region, ACCOUNTS, "", "", time.time())
        return connection_credentials(state, self.server.state_dir, connection, entra=entra)


def untraced_requests(patch: pytest.MonkeyPatch) -> None:
    """The in-process twin answers requests untraced by coverage: its threads run moto (seconds of CPU per
    module under the tracer, which --cov adds about 40 % to), and what they run of ours is measured by the
    tests that call it directly."""
    handle = socketserver.ThreadingMixIn.process_request_thread

    def untraced(self: Any, request: Any, client_address: Any) -> None:
        sys.settrace(None)
        handle(self, request, client_address)

    patch.setattr(socketserver.ThreadingMixIn, "process_request_thread", untraced)


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    config = load_config(REPO_ROOT / "mlops.yaml", profile="local", environ={})
    server = TwinServer(
        state_dir=tmp_path_factory.mktemp("twin"),
        accounts=dict(ACCOUNTS),
        region=config.region,
        time_scale=0.001,
    ).start()
    # moto's state is per process: start each module's twin from an empty cloud.
    with urllib.request.urlopen(urllib.request.Request(f"{server.url}/moto-api/reset", method="POST"), timeout=10):
        pass
    patch = pytest.MonkeyPatch()
    untraced_requests(patch)
    patch.setenv("AWS_ENDPOINT_URL", server.url)
    patch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", server.url)
    seen: dict[str, Any] = {}

    def automation_ready(made: Bootstrapped) -> None:
        for account in ACCOUNTS:
            cloudformation = root_session(account, config.region).client("cloudformation")  # AWS_ENDPOINT_URL: twin
            seen[account] = sorted(s["StackName"] for s in cloudformation.describe_stacks()["Stacks"])
        seen["connection roles"] = sorted(connection_roles(server.state_dir))
        seen["approval queue"] = made.approval_queue_url

    try:
        made = bootstrap(
            config,
            boto3.Session(aws_access_key_id="twin-automation", aws_secret_access_key="x", region_name=config.region),
            directory=server.state_dir,
            automation_ready=automation_ready,
        )
        yield Twin(server=server, config=config, made=made, at_automation_ready=seen)
    finally:
        patch.undo()
        server.stop()
