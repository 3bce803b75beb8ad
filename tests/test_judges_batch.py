"""The batch backend: OpenAI Batch files, executed against a real llama_cpp.server as `vllm run-batch`
would, imported, and completed from the cache: the same decisions as the online run."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from support import run_cli

TARGETS_DIR = Path(__file__).resolve().parent / "data" / "batch_targets"
TARGETS = ("--target", str(TARGETS_DIR))


def _common(bench: Path, out: Path, cache: Path, limit: int = 2, attempts: int = 1) -> tuple[str, ...]:
    return (
        "eval",
        "--benchmark",
        str(bench),
        "--method",
        "spm-zeroshot",
        "--model",
        "smollm2",
        "--samples",
        "2",
        "--temperature",
        "0",
        "--max-attempts",
        str(attempts),
        "--limit",
        str(limit),
        "--seed",
        "5",
        "--max-tokens",
        "600",
        "--out",
        str(out),
        "--cache",
        str(cache),
        *TARGETS,
    )


def _execute(requests: Path, results: Path, server: str) -> int:
    """Run a batch file line by line against a server, writing the batch output format."""
    root = server.removesuffix("/v1")
    lines = []
    with httpx.Client(timeout=600) as client:
        for n, line in enumerate(requests.read_text().splitlines()):
            req = json.loads(line)
            assert req["method"] == "POST" and req["url"] == "/v1/chat/completions"
            assert "response_format" in req["body"] and "seed" in req["body"] and "temperature" in req["body"]
            res = client.post(root + req["url"], json=req["body"])
            body = res.json()
            lines.append(
                {
                    "id": f"batch_req_{n}",
                    "custom_id": req["custom_id"],
                    "response": {"status_code": res.status_code, "request_id": f"req_{n}", "body": body},
                    "error": None,
                }
            )
    results.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return len(lines)


def _decisions(run: Path) -> list[tuple]:
    rows = [json.loads(x) for x in (run / "decisions.jsonl").read_text().splitlines()]
    return [(d["item"], d["target"], d["chosen"], d["predictions"]) for d in rows]


def test_export_execute_import_equals_the_online_run(helpsteer2_dir: Path, tmp_path: Path, llama_server: str):
    # Greedy answers, and no re-asks: a re-ask samples at temperature 0.7, and llama.cpp's
    # logits (hence a sampled token) depend on what its KV cache held from the call before,
    # which differs between an online run (re-asked at once) and a batch (re-asked in the
    # next round). An answer that is not valid JSON fails its item in both runs alike.
    online = run_cli(
        *_common(helpsteer2_dir, tmp_path / "online", tmp_path / "online.sqlite"),
        "--backend",
        "openai",
        "--base-url",
        llama_server,
        "--concurrency",
        "1",
        "--response-format",
        "json_object",
        # on a busy machine a call may pass the default 120 s; its retry would change what the
        # server's KV cache holds before the next call, and so a greedy token
        "--timeout",
        "1800",
    )
    assert online.returncode == 0, online.stderr

    batch_dir = tmp_path / "batch"
    cache = tmp_path / "batch.sqlite"
    args = (
        *_common(helpsteer2_dir, tmp_path / "offline", cache),
        "--backend",
        "batch",
        "--batch-dir",
        str(batch_dir),
        "--response-format",
        "json_object",
    )
    exported: list[int] = []
    for round_ in range(1, 3):
        res = run_cli(*args)
        if res.returncode == 0:
            break
        assert res.returncode == 3, res.stderr
        assert "vllm run-batch -i" in res.stdout and "pluralign batch import" in res.stdout
        requests = batch_dir / f"requests-{round_:03d}.jsonl"
        results = batch_dir / f"results-{round_:03d}.jsonl"
        exported.append(_execute(requests, results, llama_server))
        imported = run_cli("batch", "import", str(results), "--cache", str(cache))
        assert imported.returncode == 0, imported.stderr
        assert f"{exported[-1]} result lines" in imported.stdout
        again = run_cli("batch", "import", str(results), "--cache", str(cache))
        assert f"{exported[-1]} already imported" in again.stdout  # importing twice changes nothing
    else:
        pytest.fail("the batch never completed")
    assert exported == [2 * 2 * 2]  # items x attributes x samples, and nothing left after one round
    assert _decisions(tmp_path / "offline") == _decisions(tmp_path / "online")


def test_import_problems_are_reported_and_lose_nothing(helpsteer2_dir: Path, tmp_path: Path, llama_server: str):
    batch_dir = tmp_path / "batch"
    cache = tmp_path / "c.sqlite"
    args = (
        *_common(helpsteer2_dir, tmp_path / "run", cache, limit=1, attempts=3),
        "--backend",
        "batch",
        "--batch-dir",
        str(batch_dir),
    )
    res = run_cli(*args)
    assert res.returncode == 3, res.stderr
    requests = (batch_dir / "requests-001.jsonl").read_text().splitlines()
    first = json.loads(requests[0])
    assert first["body"]["response_format"]["type"] == "json_schema"  # the vLLM / OpenAI form by default
    assert first["body"]["response_format"]["json_schema"]["schema"]["required"] == ["A", "B"]
    answer = {"A": {"reasoning": "Fine.", "score": 60}, "B": {"reasoning": "Less so.", "score": 30}}
    good = {
        "id": "b1",
        "custom_id": first["custom_id"],
        "response": {
            "status_code": 200,
            "request_id": "r1",
            "body": {
                "choices": [{"message": {"content": json.dumps(answer)}}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 9},
            },
        },
        "error": None,
    }
    second = json.loads(requests[1])
    error_line = {
        "id": "b2",
        "custom_id": second["custom_id"],
        "response": None,
        "error": {"code": "boom", "message": "x"},
    }
    third = json.loads(requests[2])
    broken = {**good, "custom_id": third["custom_id"]}
    broken["response"] = {**good["response"], "body": {"choices": [{"message": {"content": '{"A": {"score": 1'}}]}}
    foreign = {**good, "custom_id": "plg-not-from-this-cache-0-0"}
    results = tmp_path / "results.jsonl"
    results.write_text(
        "".join(json.dumps(x) + "\n" for x in (good, error_line, broken, foreign)) + '{"id": "b5", "custom'
    )
    imported = run_cli("batch", "import", str(results), "--cache", str(cache))
    assert imported.returncode == 0, imported.stderr
    out = imported.stdout + imported.stderr
    assert "5 result lines: 1 valid answers stored, 1 invalid (re-asked by the next export)" in out
    assert "1 error lines" in out and "1 with a custom_id this cache never exported" in out and "1 unreadable" in out
    assert "line 5 is not a complete batch result" in out and "another run's file" in out
    # the next export asks again for everything but the stored answer
    res = run_cli(*args)
    assert res.returncode == 3
    again = [json.loads(x) for x in (batch_dir / "requests-002.jsonl").read_text().splitlines()]
    ids = {x["custom_id"] for x in again}
    assert len(again) == len(requests) - 1 and first["custom_id"] not in ids and second["custom_id"] in ids
    reask = third["custom_id"][:-1] + "1"  # attempt 1 of the invalid answer: sampled, another seed
    assert reask in ids and third["custom_id"] not in ids
    body = next(x["body"] for x in again if x["custom_id"] == reask)
    assert body["seed"] == third["body"]["seed"] + 1000 and body["temperature"] == 0.7
    assert run_cli("batch", "import", str(tmp_path / "missing.jsonl")).returncode == 2
