"""Imported once by the warm step launcher (see step_launcher.py): what the step scripts import.

Only the libraries of SageMaker's framework images (numpy, pandas, scikit-learn, XGBoost, matplotlib
with its headless backend); nothing of this repository, so a step script still cannot import it.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot
import numpy  # noqa: F401
import pandas  # noqa: F401
import sklearn.impute
import sklearn.metrics
import sklearn.model_selection
import sklearn.preprocessing  # noqa: F401
import xgboost  # noqa: F401
