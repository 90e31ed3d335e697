"""Write one of the paper's experiments as CSV, a markdown table with notes, and a plot."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl

from dfmnist.storage.files import atomic_path
from dfmnist.train import paper, tables

TITLES = {
    "table3": "Table 3: accuracy per model and compression (trained and tested on one variant)",
    "table4": "Table 4: cross-compression (trained on one variant, tested on another)",
    "table5": "Table 5: trained on mixed quality, tested per variant",
    "per_action": "Figure 6: accuracy per action and compression (trained on the full set)",
    "single_action": "Figure 5: trained on one action, tested on every action",
    "corpus_size": "Figure 3: accuracy against the training corpus size",
}
SOURCES = {
    "table3": "Table 3", "table4": "Table 4", "table5": "Table 5",
    "per_action": "the text on Figure 6 (values the text states)",
    "single_action": "the text on Figure 5 (values the text states)",
    "corpus_size": "none (Figure 3 is a plot without stated values)",
}


def build_table(name: str, preds: pl.DataFrame, section: dict, variants: list[str],
                actions: list[str]) -> pl.DataFrame:
    """The rows of experiment `name` from the predictions of the jobs it depends on."""
    how = section["video_score"]
    if name in ("table3", "table4", "table5"):
        return getattr(tables, name)(preds, section[name]["models"], variants, how)
    if name == "per_action":
        return tables.per_action(preds, section["per_action"]["model"], variants, how)
    if name == "single_action":
        cfg = section["single_action"]
        return tables.single_action(preds, cfg["model"], cfg["variant"], actions, how)
    if name == "corpus_size":
        cfg = section["corpus_size"]
        return tables.corpus_size(preds, cfg["model"], variants, cfg["fakes"], how)
    raise ValueError(f"unknown experiment {name!r}")


def notes(name: str, runs: list[dict], section: dict, demo: bool, table: pl.DataFrame,
          preds: pl.DataFrame | None = None) -> list[str]:
    """What a reader must know to judge the numbers: data size, recipe, weights, the paper."""
    pretrained = sorted({r["model"] for r in runs if r.get("pretrained")})
    scratch = sorted({r["model"] for r in runs if not r.get("pretrained")})
    lines = [
        "accuracy in % on the test split: `frame_acc` per frame, `video_acc` per video "
        f"(the {section.get('video_score', 'mean')} of its frame scores, threshold 0.5); ROC "
        "AUC (scikit-learn) with real as the positive class (– where the test set has one "
        "class only)",
        SCORE_CONVENTION,
        f"recipe: Adam lr {section['lr']:g}, betas {tuple(section['betas'])}, poly decay "
        f"(power {section['poly_power']:g}), {section['epochs']} epochs, batch "
        f"{section['batch_size']}, best epoch on the validation split",
        f"`paper_acc`: the paper's accuracy from {SOURCES[name]}",
    ]
    if scratch:
        lines.append(f"trained from scratch, without ImageNet weights: {', '.join(scratch)} "
                     "(the paper starts ResNet and Xception from ImageNet)")
    if pretrained:
        lines.append(f"ImageNet weights from a local file: {', '.join(pretrained)}")
    skipped = [f"{r['trainset']} ({r['skipped']})" for r in runs if r.get("skipped")]
    if skipped:
        lines.append("not trained, rows left empty: " + ", ".join(skipped))
    runs = [r for r in runs if not r.get("skipped")]
    videos = sorted({(r["trainset"], r.get("train_videos"), r.get("train_frames")) for r in runs})
    lines.append("training videos (frames) per training set: " + ", ".join(
        f"{t} {n} ({f})" for t, n, f in videos))
    tested = table.filter(pl.col("test_videos") > 0)["test_videos"]
    if tested.len():
        lines.append(f"test videos per cell: {int(tested.min())} to {int(tested.max())}")
    if preds is not None and preds.height:
        frames = preds.unique(["variant", "video_id", "frame"])
        share = 100 * float((frames["target"] == 0).mean())
        lines.append(f"fakes are {share:.1f}% of the test frames: a detector that calls every "
                     "frame fake scores that frame accuracy")
    if demo:
        lines.append("**demo data**: built from a few built-in photos; with this few videos the "
                     "numbers are noise and say nothing about the detectors on DeepFake MNIST+")
    return lines


def write_table_files(out, table: pl.DataFrame, title: str, notes: list[str],
                      plot: Callable[[Path], None], scores: pl.DataFrame | None = None) -> None:
    """A table target's files, each written whole or not at all: `out.csv`, `out.md` (the
    table with its notes), `out.png` (drawn by `plot(path)`) and, when given, the per-item
    `scores` as `out.scores` (parquet)."""
    if scores is not None:
        with atomic_path(out.scores) as tmp:
            scores.write_parquet(tmp)
    with atomic_path(out.csv) as tmp:
        table.write_csv(tmp)
    with atomic_path(out.md) as tmp:
        tmp.write_text(tables.markdown(table, title, notes))
    with atomic_path(out.png) as tmp:
        plot(tmp)


def write_experiment(name: str, prediction_files: list[str], run_files: list[str],
                     section: dict, variants: list[str], actions: list[str], demo: bool,
                     csv: str | Path, md: str | Path, png: str | Path) -> pl.DataFrame:
    """Build experiment `name` and write its CSV, markdown and plot."""
    preds = pl.concat([pl.read_parquet(p) for p in prediction_files], how="vertical_relaxed")
    runs = [json.loads(Path(p).read_text()) for p in run_files]
    table = build_table(name, preds, section, variants, actions)
    table.write_csv(csv)
    Path(md).write_text(tables.markdown(table, TITLES[name],
                                        notes(name, runs, section, demo, table, preds)))
    label = lambda n: paper.MODEL_NAMES.get(n, str(n))  # noqa: E731
    if name in ("table3", "table5"):
        tables.bar_plot(table, "variant", "model", png, TITLES[name].split(":")[0], label=label)
    elif name == "table4":
        table = table.with_columns((pl.col("train") + "→" + pl.col("test")).alias("pair"))
        tables.bar_plot(table, "pair", "model", png, "Table 4", label=label)
    elif name == "per_action":
        tables.bar_plot(table, "action", "variant", png, "Figure 6 (per action)")
    elif name == "single_action":
        tables.bar_plot(table, "train_action", "model", png, "Figure 5 (one training action)",
                        label=label)
    else:
        tables.line_plot(table, "fakes", "variant", png, "Figure 3 (corpus size)")
    return table


#: How dfmnist's own detectors score, stated in each of their tables. The sign is the only
#: departure from Bonettini et al.'s logit of FAKE: every dfmnist table counts real as the
#: positive class, and flipping the sign changes neither an AUC nor a decision at 0.5. A
#: video's score averages frame probabilities, as DeepfakeBench's video AUC does (its
#: get_video_metrics), not frame logits as the original does.
SCORE_CONVENTION = ("scores: dfmnist's convention, P(real) = the sigmoid of the network's "
                    "logit of REAL (Bonettini et al.'s published networks give the logit of "
                    "FAKE: P(fake) = 1 - P(real)); a video's score aggregates its frames' "
                    "probabilities")


def _demo_note() -> str:
    return ("**demo data**: built from a few built-in photos; with this few videos the numbers "
            "are noise and say nothing about the detectors on DeepFake MNIST+")


def ensemble_notes(run_files: list[str], video_score: str, demo: bool) -> list[str]:
    """Notes of the ensemble table: how fusion and the video score are made, the weights."""
    runs = [json.loads(Path(p).read_text()) for p in run_files]
    scratch = sorted({r["model"] for r in runs if not r.get("pretrained")})
    small = sorted({f"{r['model']} at {r['input_size']}" for r in runs
                    if r.get("input_size") and r["input_size"] != 224})
    lines = ["`fusion`: the sigmoid of the mean of the networks' logits per frame (Bonettini "
             "et al.'s fusion); trained and tested on the same variant",
             SCORE_CONVENTION,
             f"`video_*`: the {video_score} of a video's frame scores, threshold 0.5; ROC AUC "
             "(scikit-learn) with real as the positive class",
             "the `*_st` networks: triplet-loss embedding first, then a new head alone"]
    if scratch:
        lines.append(f"trained from scratch, without ImageNet weights: {', '.join(scratch)} "
                     "(the paper starts from ImageNet)")
    if small:
        lines.append("input side other than the paper's 224: " + ", ".join(small))
    if demo:
        lines.append(_demo_note())
    return lines


def robustness_notes(variant: str, video_score: str, demo: bool) -> list[str]:
    """Notes of the robustness table: what the levels are and where they come from."""
    lines = [f"test videos of `{variant}`, detectors trained on `{variant}`; level 0 is the "
             "clean frame, `parameter` the perturbation's setting at each level "
             "(dfmnist.train.perturb: DeeperForensics-1.0's levels where it defines them; "
             "`jpeg` quality and `brightness` offsets are ours)",
             f"`video_*`: the {video_score} of a video's frame scores; ROC AUC by scikit-learn",
             SCORE_CONVENTION,
             "perturbations are applied to the stored face crops, so a given blur or resize is "
             "stronger relative to the face than on the full frames DeeperForensics-1.0 used"]
    if demo:
        lines.append(_demo_note())
    return lines


def published_notes(networks: list[dict], names: list[str], variant: str, margin: float,
                    demo: bool) -> list[str]:
    """Notes of the published_scores table: which networks, which conventions, which crops."""
    if networks:
        lines = ["networks: Bonettini et al.'s published files, loaded strictly: " + ", ".join(
            f"{n['arch']} ({Path(n['path']).name}, padding of efficientnet_pytorch "
            f"{n['padding']})" for n in networks),
                 f"inputs: MTCNN's face box in each (altered) frame, widened by {margin:g} of "
                 "its height (twice above), squared, 224x224 (the original: BlazeFace boxes, "
                 "which stop at the brows)"]
    else:
        lines = ["**no published files configured** (train.published_scores.networks): these "
                 "are this project's own trained networks (" + ", ".join(names) + "), not "
                 "Bonettini et al.'s; each sees the stored face crops at its input size, and "
                 "its logit of REAL is negated to give the logit of FAKE"]
    lines += [
        f"test videos of `{variant}`; `none`: the clean frames; `parameter`: the alteration's "
        "strength (dfmnist.train.published.alterations); alterations are applied before the "
        "faces are found",
        "scores follow the original's conventions: 0 real, 1 fake; a video's logit is the mean "
        "of its frames' logits of FAKE, `fusion` the mean of the networks' video logits, a "
        "score the sigmoid of a logit; `auc`: ROC AUC (scikit-learn) with FAKE the positive "
        "class; `real_min`/`real_max`: the reals' score range (the report: 0-0.05)",
        "`faces_found`: the share of frames where MTCNN found the face (the others take their "
        "neighbours' box; a video without any face, the clean frames' boxes moved with the "
        "frame)"]
    if demo:
        lines.append(_demo_note())
    return lines
