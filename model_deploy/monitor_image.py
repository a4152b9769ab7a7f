"""The SageMaker model-monitor analyzer image of a region, read offline from the SDK's bundled table.

The table ships inside the pinned SageMaker SDK (`sagemaker/core/image_uri_config/model-monitor.json`);
it is read as a file so the deploy command does not pay the SDK's multi-second import for one string.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from mlops.core.errors import DeployError

_TABLE = Path("core") / "image_uri_config" / "model-monitor.json"


def monitor_image_uri(region: str) -> str:
    spec = importlib.util.find_spec("sagemaker")
    if spec is None or not spec.submodule_search_locations:
        raise DeployError(
            "the SageMaker SDK is not installed; expected it to provide the model-monitor image table",
            hint="install the project (`make install`) or set deploy.<stage>.monitor.image_uri",
        )
    table_path = Path(next(iter(spec.submodule_search_locations))) / _TABLE
    try:
        table = json.loads(table_path.read_text(encoding="utf-8"))
        version = next(iter(table["versions"].values()))
        registries: dict[str, str] = version["registries"]
        repository = str(version["repository"])
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise DeployError(
            f"could not read the model-monitor image table {table_path}: {exc}",
            hint="set deploy.<stage>.monitor.image_uri to the analyzer image of your region",
        ) from exc
    if region not in registries:
        raise DeployError(
            f"region {region} has no model-monitor image in {table_path}; expected one of {sorted(registries)}",
            hint="set deploy.<stage>.monitor.image_uri, or turn the monitor off for this stage",
        )
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{registries[region]}.dkr.ecr.{region}.{domain}/{repository}:latest"
