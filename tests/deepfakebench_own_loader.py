"""Load a dfmnist DeepfakeBench export with DeepfakeBench's own dataset class.

    python tests/deepfakebench_own_loader.py DEEPFAKEBENCH_CHECKOUT results/deepfakebench

Needs what DeepfakeBench's loader imports (its install.sh pins albumentations==1.1.0; lmdb).
As the README says, it links an LMDB export's `lmdb/{Name}_{variant}_lmdb` folders into the
checkout's datasets/lmdb/ and reads them with DeepfakeBench's own train_config.yaml as it
ships (`lmdb: True`, `lmdb_dir: ./datasets/lmdb`), or links a folder export's rgb/ folders
into datasets/rgb/ and sets `lmdb: False`. Then it builds DeepfakeAbstractBaseDataset for every
exported JSON in train and test mode, loads every frame through it and checks that the mask
and landmarks it derives from each frame path exist (the loader silently substitutes zeros
for a missing mask, and for a missing landmark file in folder mode).
"""

import builtins
import glob
import os
import sys
import types

import yaml

dfb, export = sys.argv[1], os.path.abspath(sys.argv[2])
sys.path.insert(0, os.path.join(dfb, "training"))
use_lmdb = os.path.isdir(os.path.join(export, "lmdb"))
folder = "lmdb" if use_lmdb else "rgb"
os.makedirs(os.path.join(dfb, "datasets", folder), exist_ok=True)
for name in os.listdir(os.path.join(export, folder)):
    link = os.path.join(dfb, "datasets", folder, name)
    if os.path.islink(link):
        os.unlink(link)  # a link left by an earlier export
    os.symlink(os.path.join(export, folder, name), link)
os.chdir(dfb)  # DeepfakeBench runs from its checkout: paths start with ./datasets/
# the package's __init__ imports every dataset class (dlib, ...): load only this one
package = types.ModuleType("dataset")
package.__path__ = [os.path.join(dfb, "training", "dataset")]
sys.modules["dataset"] = package
from dataset.abstract_dataset import DeepfakeAbstractBaseDataset  # noqa: E402

labels = yaml.safe_load(open(os.path.join(export, "label_dict.yaml")))
labels = labels.get("label_dict", labels)
base = yaml.safe_load(open("training/config/train_config.yaml"))
detector = yaml.safe_load(open("training/config/detector/xception.yaml"))
errors = []
real_print = builtins.print


def recording_print(*args, **kwargs):
    """The loader reports a frame it cannot read by printing, then returns item 0 instead."""
    errors.append(" ".join(map(str, args)))
    real_print(*args, **kwargs)


builtins.print = recording_print
total = 0
for js in sorted(glob.glob(os.path.join(export, "dataset_json", "*.json"))):
    name = os.path.basename(js)[:-5]
    for mode in ("train", "test"):
        config = {**base, **detector, "with_mask": True, "with_landmark": True,
                  "dataset_json_folder": os.path.join(export, "dataset_json"),
                  "label_dict": {**base.get("label_dict", {}), **labels},
                  "train_dataset": [name], "test_dataset": name, "compression": "c23",
                  "frame_num": {"train": 32, "test": 32}, "use_data_augmentation": False,
                  "resolution": 256}
        if not use_lmdb:
            config["lmdb"] = False
        assert config["lmdb"] == use_lmdb and config["lmdb_dir"] == "./datasets/lmdb"
        ds = DeepfakeAbstractBaseDataset(config, mode)
        for i in range(len(ds)):
            path = ds.data_dict["image"][i]
            ds.load_rgb(path)  # asserts the file exists or the key decodes
            derived = (path.replace("frames", "masks"),
                       path.replace("frames", "landmarks").replace(".png", ".npy"))
            if use_lmdb:
                with ds.env.begin() as txn:
                    for key in derived:
                        assert txn.get(key.encode()) is not None, key
            else:
                for file in derived:
                    assert os.path.exists(file), file
            image, label, landmarks, mask = ds[i]
            assert label in (0, 1) and image.shape[-1] == 256
            assert landmarks is not None and mask is not None
            if use_lmdb:  # its fixed dlib layout: ours holds the loader's "no landmarks" zeros
                assert tuple(landmarks.shape) == (81, 2) and not landmarks.any()
        total += len(ds)
        seen = sorted(set(ds.data_dict["label"]))
        real_print(f"{name} {mode}: {len(ds)} frames, labels {seen}")
        if use_lmdb:
            ds.env.close()  # py-lmdb opens one environment per path and process
assert not errors, errors[:3]
real_print(f"OK: {total} frames loaded by DeepfakeAbstractBaseDataset "
           f"({'lmdb' if use_lmdb else 'folders'}), every mask and landmark present")
