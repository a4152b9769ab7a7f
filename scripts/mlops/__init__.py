"""`mlops`: the command line and shared plumbing of the Azure DevOps x SageMaker MLOps project."""

__version__ = "0.1.0"
