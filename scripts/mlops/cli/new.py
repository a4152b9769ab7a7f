"""`mlops new use-case NAME`: generate a use case folder (use_case.yaml, README.md, a copy of a local CSV)."""

from __future__ import annotations

import csv
from pathlib import Path

import click

from mlops.core.use_cases import FRAMEWORKS, TASKS


@click.group("new")
def new() -> None:
    """Generate repository content: a new use case."""


@new.command("use-case")
@click.argument("name")
@click.option("--task", type=click.Choice(TASKS), required=True, help="What the model predicts.")
@click.option("--framework", type=click.Choice(FRAMEWORKS), required=True, help="xgboost, or sklearn (random forest).")
@click.option(
    "--data",
    metavar="URI",
    help="sklearn:<breast_cancer|wine|diabetes|iris>, file:<CSV> (copied into the folder) or s3://<bucket>/<key>.csv "
    "(default: a bundled sample that suits the task: breast_cancer, wine or diabetes).",
)
@click.option("--label", metavar="COLUMN", help="The column to predict (default: label).")
@click.option(
    "--features",
    metavar="A,B,C",
    help="The input columns in order (default: every column but the label; required with s3://). "
    "Quote a name holding a comma: '\"a,b\",c'.",
)
@click.option(
    "--num-classes", type=int, metavar="K", help="The label's K values 0..K-1 (only multiclass on an s3:// source)."
)
@click.option("--description", metavar="TEXT", help="One sentence: what the model predicts, from what.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder holding one folder per use case (default: use_cases.path of mlops.yaml, else the package's).",
)
@click.option(
    "--force", is_flag=True, help="Rewrite the generated files of an existing folder; other files there are kept."
)
@click.pass_context
def use_case(
    ctx: click.Context,
    name: str,
    task: str,
    framework: str,
    data: str | None,
    label: str | None,
    features: str | None,
    num_classes: int | None,
    description: str | None,
    directory: Path | None,
    force: bool,
) -> None:
    """Write a new use case NAME that loads, builds and deploys as generated. Nothing is written on a refusal."""
    from mlops.new.use_case import UseCaseRequest, plan_use_case, write_use_case

    request = UseCaseRequest(
        name=name,
        task=task,
        framework=framework,
        data=data,
        label=label,
        features=_split(features) if features is not None else None,
        num_classes=num_classes,
        description=description,
    )
    folder = directory if directory is not None else _configured_folder(ctx)
    report = write_use_case(plan_use_case(request, folder, force=force))
    click.echo(f"use case {name!r} ({task}, {framework}) in {report.target}:")
    for path in report.written:
        click.echo(f"  {'replaced' if path in report.replaced else 'wrote'} {path}")
    for path in report.kept:
        click.echo(f"  kept {path} (not written by the generator)")
    click.echo("next:")
    click.echo(f"  review {report.target / 'use_case.yaml'} (features, quality gate, hyperparameters)")
    if directory is not None:
        click.echo(f"  point use_cases.path of mlops.yaml at {folder} if mlops should find the use case there")
    click.echo(f"  make demo USE_CASE={name}                # the whole flow in the local twin")
    click.echo(f"  mlops --use-case {name} build run        # build it in SageMaker")


def _split(text: str) -> tuple[str, ...]:
    """A comma-separated list, CSV-quoted where a name holds a comma."""
    return tuple(next(csv.reader([text]), []))


def _configured_folder(ctx: click.Context) -> Path:
    """mlops.yaml's use_cases.path (relative to the file), else model_build/use_cases of the package."""
    from mlops.core.config import find_config_file
    from mlops.core.use_cases import default_directory

    context = ctx.find_root().obj
    configured = context.config.use_cases.path
    if not configured:
        return default_directory()
    path = Path(configured)
    return path if path.is_absolute() else find_config_file(context.config_path).parent / path
