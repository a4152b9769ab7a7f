"""The use case: breast-cancer classification with XGBoost, built as a SageMaker Pipeline.

`steps/` holds the code SageMaker runs in its containers (self-contained); `pipeline.py` renders
the pipeline definition (the only module importing the SageMaker SDK); `build.py` upserts and runs it.
"""
