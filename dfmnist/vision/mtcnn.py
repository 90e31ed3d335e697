"""A batched MTCNN cascade over facenet-pytorch's pretrained P-, R- and O-Nets.

facenet-pytorch's own `MTCNN.detect` resamples every candidate box with a separate torch
`interpolate(mode="area")` call; on a CPU those calls dominate the run (hundreds per frame,
milliseconds each), so batching frames barely helps there. This cascade runs the same three
networks with the same proposal, regression and suppression steps and the same area
resampling (adaptive average pooling), but computes the resampling from one summed-area table
per frame (shared by every pyramid level and every candidate patch) and feeds each
network whole batches: all frames of a batch share each pyramid level, and all candidates of a
batch go through R-Net and O-Net together. Detections match facenet-pytorch's to float
rounding. The networks' weights ship inside the facenet-pytorch wheel; nothing is downloaded.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

#: Ratio between successive image-pyramid scales (as in the MTCNN paper).
PYRAMID_FACTOR = 0.709
#: Overlap thresholds: within one P-Net scale, across scales, after R-Net, after O-Net (min).
NMS_SCALE, NMS_PNET, NMS_RNET, NMS_ONET = 0.5, 0.7, 0.7, 0.7
#: Candidates per R-Net/O-Net forward pass (bounds memory, not results).
NET_CHUNK = 512

Detection = tuple[np.ndarray, np.ndarray, np.ndarray]


def _normalise(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)
    return (x.permute(0, 3, 1, 2) - 127.5) * 0.0078125


def _bins(n_in: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive-average-pooling bins for each input length in `n_in` (shape (N,)): output i
    averages inputs [floor(i n_in / n_out), ceil((i + 1) n_in / n_out)). Both (N, n_out)."""
    i = np.arange(n_out)
    n_in = np.asarray(n_in)[:, None]
    return (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)


def integrals(frames: np.ndarray) -> np.ndarray:
    """Summed-area tables (B, H + 1, W + 1, C) of uint8 frames, exact: int32 (half the memory
    traffic) while a full-frame sum fits, float64 beyond about 8 megapixels."""
    depth = cv2.CV_32S if frames.shape[1] * frames.shape[2] * 255 < 2**31 else cv2.CV_64F
    return np.stack([cv2.integral(np.ascontiguousarray(f), sdepth=depth) for f in frames])


def area_resize(
    tables: np.ndarray, image: np.ndarray, boxes: np.ndarray, height: int, width: int
) -> np.ndarray:
    """torch's `interpolate(mode="area")` of many regions at once, float32 (N, height, width, C).

    Region k is rows y0:y1, columns x0:x1 (`boxes[k]` = y0, x0, y1, x1) of frame `image[k]`,
    whose summed-area table is `tables[image[k]]`.
    """
    y0, x0, y1, x1 = (boxes[:, i : i + 1] for i in range(4))
    ys, ye = _bins(y1[:, 0] - y0[:, 0], height)
    xs, xe = _bins(x1[:, 0] - x0[:, 0], width)
    ys, ye, xs, xe = ys + y0, ye + y0, xs + x0, xe + x0
    t = image[:, None, None]

    def corner(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return tables[t, rows[:, :, None], cols[:, None, :]].astype(np.float64)

    total = corner(ye, xe) - corner(ys, xe) - corner(ye, xs) + corner(ys, xs)
    area = (ye - ys)[:, :, None, None] * (xe - xs)[:, None, :, None]
    return (total / area).astype(np.float32)


def _nms(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union"
) -> np.ndarray:
    """Greedy suppression. `union`: IoU on continuous boxes (as torchvision's nms, which
    facenet-pytorch uses after P-Net and R-Net); `min`: overlap over the smaller area on
    pixel-inclusive boxes (its final O-Net step)."""
    one = 1.0 if mode == "min" else 0.0
    order = np.argsort(-scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0] + one) * (boxes[:, 3] - boxes[:, 1] + one)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(boxes[i, 2], boxes[rest, 2])
                       - np.maximum(boxes[i, 0], boxes[rest, 0]) + one)
        h = np.maximum(0.0, np.minimum(boxes[i, 3], boxes[rest, 3])
                       - np.maximum(boxes[i, 1], boxes[rest, 1]) + one)
        inter = w * h
        if mode == "min":
            overlap = inter / np.minimum(area[i], area[rest])
        else:
            overlap = inter / (area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=int)


def _nms_per_image(
    boxes: np.ndarray, scores: np.ndarray, image: np.ndarray, threshold: float,
    mode: str = "union",
) -> np.ndarray:
    if mode == "union":  # torchvision's compiled nms: what facenet-pytorch calls here
        from torchvision.ops import batched_nms

        keep = batched_nms(torch.from_numpy(np.ascontiguousarray(boxes[:, :4], np.float32)),
                           torch.from_numpy(np.ascontiguousarray(scores, np.float32)),
                           torch.from_numpy(np.asarray(image, dtype=np.int64)), threshold)
        return np.sort(keep.numpy())
    keep = [np.flatnonzero(image == i)[_nms(boxes[image == i], scores[image == i], threshold,
                                            mode)] for i in np.unique(image)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=int)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray, inclusive: bool) -> np.ndarray:
    extra = 1.0 if inclusive else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    return boxes[:, :4] + reg * np.stack([w, h, w, h], axis=1)


class Cascade:
    """MTCNN over batches of equally sized RGB uint8 frames (B, H, W, 3)."""

    def __init__(
        self, device: str | torch.device = "cpu", min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
    ) -> None:
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

        self.device = torch.device(device)
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.pnet = PNet().to(self.device).eval()
        self.rnet = RNet().to(self.device).eval()
        self.onet = ONet().to(self.device).eval()

    def scales(self, height: int, width: int) -> list[float]:
        """Pyramid scales: the smallest face maps to P-Net's 12-pixel window, then shrink."""
        scale = 12.0 / self.min_face_size
        side = min(height, width) * scale
        out = []
        while side >= 12:
            out.append(scale)
            scale *= PYRAMID_FACTOR
            side *= PYRAMID_FACTOR
        return out

    def detect(self, frames: np.ndarray) -> list[Detection]:
        """Per frame: boxes (n, 4) x0 y0 x1 y1, probabilities (n,), landmarks (n, 5, 2)."""
        frames = np.asarray(frames, dtype=np.uint8)
        if frames.ndim == 3:
            frames = frames[None]
        tables = integrals(frames)
        with torch.inference_mode():
            boxes, image = self._proposals(frames, tables)
            boxes, image = self._refine(frames, tables, boxes, image)
            boxes, points, image = self._output(frames, tables, boxes, image)
        results: list[Detection] = []
        for i in range(len(frames)):
            sel = np.flatnonzero(image == i)
            b = boxes[sel]
            order = np.argsort(-(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), kind="stable")
            sel = sel[order]
            results.append((boxes[sel, :4].astype(np.float64), boxes[sel, 4].astype(np.float64),
                            points[sel].astype(np.float64)))
        return results

    def _proposals(
        self, frames: np.ndarray, tables: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """P-Net over the pyramid; rows x0 y0 x1 y1 score, squared, with their frame index."""
        height, width = frames.shape[1:3]
        found, images = [], []
        whole, first = np.array([[0, 0, height, width]]), np.zeros(1, dtype=int)
        for scale in self.scales(height, width):
            size = (int(height * scale + 1), int(width * scale + 1))
            # frame by frame: each frame's table stays in cache while it is gathered from
            level = np.concatenate([area_resize(t[None], first, whole, *size) for t in tables])
            reg, prob = self.pnet(_normalise(level, self.device))
            prob = prob[:, 1]
            mask = prob >= self.thresholds[0]
            if not bool(mask.any()):
                continue
            where = mask.nonzero().cpu().numpy()  # frame, y, x
            score = prob[mask].cpu().numpy()
            offsets = reg.permute(0, 2, 3, 1)[mask].cpu().numpy()
            # float32 like facenet-pytorch's tensors: the floors then land on the same pixels
            xy = where[:, [2, 1]].astype(np.float32)
            q1 = np.floor((2 * xy + 1) / np.float32(scale))
            q2 = np.floor((2 * xy + 12) / np.float32(scale))
            rows = np.concatenate([q1, q2, score[:, None], offsets], axis=1)
            keep = _nms_per_image(rows[:, :4], rows[:, 4], where[:, 0], NMS_SCALE)
            found.append(rows[keep])
            images.append(where[keep, 0])
        if not found:
            return np.zeros((0, 5), np.float32), np.zeros(0, dtype=int)
        rows = np.concatenate(found)
        image = np.concatenate(images)
        keep = _nms_per_image(rows[:, :4], rows[:, 4], image, NMS_PNET)
        rows, image = rows[keep], image[keep]
        boxes = _square(_regress(rows[:, :4], rows[:, 5:9], inclusive=False))
        return np.concatenate([boxes, rows[:, 4:5]], axis=1), image

    def _patches(
        self, frames: np.ndarray, tables: np.ndarray, boxes: np.ndarray,
        image: np.ndarray, size: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The in-frame part of each box resized to size x size; drops boxes fully outside."""
        height, width = frames.shape[1:3]
        b = np.trunc(boxes[:, :4]).astype(int)
        x0 = np.maximum(b[:, 0], 1) - 1
        y0 = np.maximum(b[:, 1], 1) - 1
        x1 = np.minimum(b[:, 2], width)
        y1 = np.minimum(b[:, 3], height)
        valid = np.flatnonzero((x1 > x0) & (y1 > y0))
        regions = np.stack([y0, x0, y1, x1], axis=1)[valid]
        return area_resize(tables, image[valid], regions, size, size), valid

    def _run(self, net: torch.nn.Module, patches: np.ndarray) -> list[np.ndarray]:
        outs: list[list[np.ndarray]] = []
        for start in range(0, len(patches), NET_CHUNK):
            res = net(_normalise(patches[start : start + NET_CHUNK], self.device))
            outs.append([r.cpu().numpy() for r in res])
        return [np.concatenate(parts) for parts in zip(*outs, strict=True)]

    def _refine(
        self, frames: np.ndarray, tables: np.ndarray, boxes: np.ndarray, image: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        patches, valid = self._patches(frames, tables, boxes, image, 24)
        if not len(valid):
            return np.zeros((0, 5)), np.zeros(0, dtype=int)
        boxes, image = boxes[valid], image[valid]
        reg, prob = self._run(self.rnet, patches)
        keep = prob[:, 1] > self.thresholds[1]
        boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], axis=1)
        reg, image = reg[keep], image[keep]
        sel = _nms_per_image(boxes[:, :4], boxes[:, 4], image, NMS_RNET)
        boxes, reg, image = boxes[sel], reg[sel], image[sel]
        squared = _square(_regress(boxes, reg, inclusive=True))
        return np.concatenate([squared, boxes[:, 4:5]], axis=1), image

    def _output(
        self, frames: np.ndarray, tables: np.ndarray, boxes: np.ndarray, image: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        empty = (np.zeros((0, 5)), np.zeros((0, 5, 2)), np.zeros(0, dtype=int))
        patches, valid = self._patches(frames, tables, boxes, image, 48)
        if not len(valid):
            return empty
        boxes, image = boxes[valid], image[valid]
        reg, marks, prob = self._run(self.onet, patches)
        keep = prob[:, 1] > self.thresholds[2]
        boxes, reg, marks, image = boxes[keep], reg[keep], marks[keep], image[keep]
        score = prob[keep, 1]
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = np.stack([w * marks[:, :5] + boxes[:, 0:1] - 1,
                           h * marks[:, 5:] + boxes[:, 1:2] - 1], axis=-1)
        final = np.concatenate([_regress(boxes, reg, inclusive=True), score[:, None]], axis=1)
        sel = _nms_per_image(final[:, :4], final[:, 4], image, NMS_ONET, mode="min")
        return final[sel], points[sel], image[sel]
