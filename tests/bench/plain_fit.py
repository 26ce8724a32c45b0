"""The plain-script baseline for training time: pandas + scikit-learn, nothing else.

Usage: python plain_fit.py DATA.csv TARGET ESTIMATOR PARAMS_JSON
Prints the seconds from reading the CSV to scoring the held-out split, the
same steps the service's training task takes (read, split, fit, score).
"""

import json
import sys
import time

import numpy as np
import pandas as pd
from sklearn import ensemble, linear_model, metrics
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler

ESTIMATORS = {
    "LogisticRegression": linear_model.LogisticRegression,
    "RandomForestClassifier": ensemble.RandomForestClassifier,
}

path, target, name, params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
started = time.perf_counter()
frame = pd.read_csv(path)
features = [c for c in frame.columns if c != target]
numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c])]
text = [c for c in features if c not in numeric]
y = LabelEncoder().fit_transform(frame[target])
x_train, x_test, y_train, y_test = train_test_split(
    frame[features], y, test_size=0.25, random_state=0, stratify=y
)
pipeline = Pipeline(
    [
        (
            "preprocess",
            ColumnTransformer(
                [
                    (
                        "numeric",
                        Pipeline(
                            [
                                ("impute", SimpleImputer(strategy="median")),
                                ("scale", StandardScaler()),
                            ]
                        ),
                        numeric,
                    ),
                    (
                        "categorical",
                        Pipeline(
                            [
                                ("impute", SimpleImputer(strategy="most_frequent")),
                                (
                                    "encode",
                                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                                ),
                            ]
                        ),
                        text,
                    ),
                ]
            ),
        ),
        ("estimator", ESTIMATORS[name](**params)),
    ]
)
pipeline.fit(x_train, y_train)
accuracy = metrics.accuracy_score(y_test, pipeline.predict(x_test))
print(
    json.dumps({"seconds": time.perf_counter() - started, "accuracy": float(np.round(accuracy, 4))})
)
