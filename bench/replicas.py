"""Feedback a deployment takes per second: `POST /v1/feedback` (each with its predictions, so no
judge is asked: the figure is the service and its database) from many users at once, against
each named deployment in one run, then every user's history checked whole.

  python bench/replicas.py --target "sqlite=http://127.0.0.1:8101" \\
      --target "postgres-1=http://127.0.0.1:8102" --target "postgres-2-proxy=http://127.0.0.1:8100" \\
      [--posts 400] [--users 40] [--concurrency 16] [--out bench/results/replicas.json]

A target with several URLs (comma-separated) spreads the posts over them round-robin, as a load
balancer would. deploy/run_local.sh starts such deployments on one machine.
"""

from __future__ import annotations

import argparse
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from common import header, machine, named_path, positive_int, uptime, write_json

PAIR = {
    "responses": ["Help them.", "Tell them to follow the rules."],
    "predictions": [{"care": 0.9, "authority": 0.2}, {"care": 0.2, "authority": 0.9}],
}


def measure(urls: list[str], posts: int, users: int, concurrency: int) -> dict:
    run = uuid.uuid4().hex[:6]
    jobs = [(f"bench-{run}-{k % users}", k) for k in range(posts)]
    clients = [httpx.Client(base_url=u, timeout=120) for u in urls]

    def post(job: tuple[str, int]) -> float:
        user, k = job
        body = {**PAIR, "question": f"Which answer? ({k})", "user": user, "chosen": k % 2}
        started = time.perf_counter()
        res = clients[k % len(clients)].post("/v1/feedback", json=body)
        res.raise_for_status()
        return time.perf_counter() - started

    load = uptime()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = sorted(pool.map(post, jobs))
    seconds = time.perf_counter() - started
    kept = sum(clients[0].get(f"/v1/users/{u}/profile").json()["n_choices"] for u in {j[0] for j in jobs})
    for c in clients:
        c.close()
    return {
        "posts": posts,
        "kept": kept,
        "seconds": round(seconds, 2),
        "posts_per_s": round(posts / seconds, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p95_ms": round(1000 * latencies[int(len(latencies) * 0.95)], 1),
        "uptime": load,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", action="append", required=True, help="NAME=URL[,URL...]")
    ap.add_argument("--posts", type=positive_int, default=400)
    ap.add_argument("--users", type=positive_int, default=40)
    ap.add_argument("--concurrency", type=positive_int, default=16)
    ap.add_argument("--out", type=named_path, default=None)
    args = ap.parse_args()
    print(header())
    rows = []
    for spec in args.target:
        name, _, urls = spec.partition("=")
        row = {
            "target": name,
            "replicas": len(urls.split(",")),
            **measure(urls.split(","), args.posts, args.users, args.concurrency),
        }
        rows.append(row)
        print(
            f"{name:>20} replicas {row['replicas']}: {row['posts_per_s']:7.1f} posts/s, p50 {row['p50_ms']} ms, "
            f"p95 {row['p95_ms']} ms, kept {row['kept']}/{row['posts']} ({row['uptime']})"
        )
    if args.out:
        write_json(args.out, {"machine": machine(), "concurrency": args.concurrency, "rows": rows})


if __name__ == "__main__":
    main()
