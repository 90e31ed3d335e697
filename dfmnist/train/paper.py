"""The DeepFake MNIST+ paper's detector results (accuracy, %), as printed in its text and tables.

Figures 3 to 6 are plots; only the values the text states are here (others are None).
Compression columns: raw, c23 (light), c40 (heavy).
"""

from __future__ import annotations

MODEL_NAMES = {"resnet50": "ResNet-50", "resnet101": "ResNet-101", "resnet152": "ResNet-152",
               "xception": "XceptionNet", "mesoinception4": "MesoInception-4"}

#: Table 3: trained and tested on the same compression.
TABLE3 = {
    "resnet50": {"raw": 96.58, "c23": 94.32, "c40": 91.49},
    "resnet101": {"raw": 96.64, "c23": 94.87, "c40": 90.44},
    "resnet152": {"raw": 96.18, "c23": 94.90, "c40": 91.27},
    "xception": {"raw": 92.38, "c23": 85.52, "c40": 83.143},
    "mesoinception4": {"raw": 60.39, "c23": 58.58, "c40": 57.90},
}

#: Table 4: trained on one compression (first), tested on another (second).
TABLE4 = {
    "resnet50": {("raw", "c23"): 85.52, ("raw", "c40"): 71.3, ("c23", "raw"): 95.16,
                 ("c23", "c40"): 82.98, ("c40", "raw"): 59.0, ("c40", "c23"): 61.02},
    "resnet152": {("raw", "c23"): 79.23, ("raw", "c40"): 68.12, ("c23", "raw"): 82.33,
                  ("c23", "c40"): 73.60, ("c40", "raw"): 76.72, ("c40", "c23"): 76.69},
    "xception": {("raw", "c23"): 79.17, ("raw", "c40"): 71.83, ("c23", "raw"): 87.89,
                 ("c23", "c40"): 68.99, ("c40", "raw"): 67.38, ("c40", "c23"): 62.9},
    "mesoinception4": {("raw", "c23"): 51.37, ("raw", "c40"): 56.92, ("c23", "raw"): 57.01,
                       ("c23", "c40"): 49.53, ("c40", "raw"): 55.65, ("c40", "c23"): 58.64},
}

#: Table 5: trained on mixed quality, tested per compression.
TABLE5 = {
    "resnet50": {"raw": 93.57, "c23": 90.69, "c40": 85.56},
    "resnet152": {"raw": 95.78, "c23": 92.11, "c40": 88.32},
    "xception": {"raw": 90.82, "c23": 83.28, "c40": 82.43},
    "mesoinception4": {"raw": 59.47, "c23": 56.94, "c40": 55.38},
}

#: Figure 5 (ResNet-50, raw, trained on one action + as many reals, tested on all); text values.
SINGLE_ACTION = {"nod": 80.46, "surprise": 79.98, "right_slope": 77.02, "left_slope": 75.89,
                 "smile": 67.36, "blink": 69.08}
SINGLE_ACTION_MEAN = 74.3
SINGLE_ACTION_ALL = 93.4  # all actions, 1000 videos per label

#: Figure 6 (ResNet-50 trained on the full set, accuracy per action and compression); text values.
PER_ACTION = {
    ("left_slope", "raw"): 92.3, ("left_slope", "c40"): 88.24,
    ("embarrassment", "c40"): 87.5, ("smile", "raw"): 100.0, ("blink", "raw"): 100.0,
}


def paper_value(table: dict, model: str, key) -> float | None:
    """The paper's number for `model` at `key`, or None where the paper gives none."""
    return table.get(model, {}).get(key)
