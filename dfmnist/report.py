"""Material for `snakemake --report`: the dataset card as HTML and sample frames per variant."""

from __future__ import annotations

import html
import re
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from dfmnist.targets.frames import FrameTar


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def markdown_to_html(text: str, title: str) -> str:
    """The subset of markdown the dataset card and tables use: headings, bullets, pipe tables,
    paragraphs, inline code and bold."""
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
           "</title><style>table{border-collapse:collapse}td,th{border:1px solid #999;"
           "padding:2px 6px}</style></head><body>"]
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.startswith("- "):
            out.append("<ul>")
            while i < len(lines) and lines[i].startswith("- "):
                out.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            out.append("</ul>")
            continue
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):
                    rows.append(cells)
                i += 1
            out.append("<table>")
            for r, cells in enumerate(rows):
                tag = "th" if r == 0 else "td"
                out.append("<tr>" + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in cells)
                           + "</tr>")
            out.append("</table>")
            continue
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    out.append("</body></html>")
    return "\n".join(out)


def sample_frames_grid(manifest: pl.DataFrame, root: str | Path = ".", size: int = 256,
                       per_row: int = 4, tile: int = 160) -> np.ndarray:
    """An RGB grid: one row per variant, the same videos and frame in each row (reals first,
    then one fake per action), labelled."""
    root = Path(root)
    variants = list(dict.fromkeys(manifest.sort("variant")["variant"].to_list()))
    first = manifest.filter(pl.col("variant") == variants[0])
    reals = first.filter(pl.col("label") == "real").sort("video_id").head(1)
    fakes = (first.filter(pl.col("label") == "fake").sort("video_id")
             .unique("action", keep="first", maintain_order=True).head(per_row - reals.height))
    chosen = pl.concat([reals, fakes])["video_id"].to_list()
    rows = []
    for variant in variants:
        tiles = []
        for video_id in chosen:
            row = manifest.filter((pl.col("variant") == variant) & (pl.col("video_id") == video_id))
            if row.height == 0:
                tiles.append(np.zeros((tile, tile, 3), np.uint8))
                continue
            r = row.row(0, named=True)
            idx = r["frame_indices"][len(r["frame_indices"]) // 2]
            frames = FrameTar(root / r["frames_tar"], r["frames_prefix"])
            image = cv2.cvtColor(frames.rgb(idx, size), cv2.COLOR_RGB2BGR)
            image = cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA)
            name = f"{variant} {r['label']}" + (f" {r['action']}" if r["action"] else "")
            cv2.rectangle(image, (0, 0), (tile, 16), (0, 0, 0), -1)
            cv2.putText(image, name, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1,
                        cv2.LINE_AA)
            tiles.append(image)
        rows.append(np.concatenate(tiles, axis=1))
    return cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_BGR2RGB)
