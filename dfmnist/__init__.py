"""dfmnist: build DeepFake MNIST+-style facial-animation datasets with Snakemake."""

__version__ = "0.1.0"

#: The ten actions of DeepFake MNIST+, in the paper's order.
ACTIONS = (
    "blink",
    "open_mouth",
    "yaw",
    "nod",
    "right_slope",
    "left_slope",
    "look_up",
    "smile",
    "surprise",
    "embarrassment",
)
