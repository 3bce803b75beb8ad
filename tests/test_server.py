"""The real server (`pluralign serve`) on 127.0.0.1 with SmolLM2, called over HTTP."""

from __future__ import annotations

import concurrent.futures
import json
import os
from pathlib import Path

import httpx
import pytest

from support import run_cli, start_server, stop

pytestmark = pytest.mark.slow  # every test here starts `pluralign serve`

SERVE = [
    "--model",
    "smollm2-135m",
    "--method",
    "spm-zeroshot",
    "--samples",
    "1",
    "--max-tokens",
    "600",
    "--n-ctx",
    "4096",
    "--no-cache",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory, helpsteer2_dir):
    runs = tmp_path_factory.mktemp("runs")
    profiles = tmp_path_factory.mktemp("profiles")
    (profiles / "caring.json").write_text(json.dumps({"care": 1.0, "authority": 0.17}))
    res = run_cli(
        "eval",
        "--benchmark",
        str(helpsteer2_dir),
        "--method",
        "oracle",
        "--limit",
        "12",
        "--out",
        str(runs / "oracle-demo"),
    )
    assert res.returncode == 0, res.stderr
    # runs the browser must survive: a results.json of the wrong shape, a corrupt decisions line,
    # and a link to a run outside the folder (never listed)
    broken = runs / "broken"
    broken.mkdir()
    (broken / "results.json").write_text("[1, 2, 3]")
    import shutil

    torn = runs / "torn"
    shutil.copytree(runs / "oracle-demo", torn)
    lines = (torn / "decisions.jsonl").read_bytes().splitlines(keepends=True)
    (torn / "decisions.jsonl").write_bytes(b"".join(lines[:3]) + b"{garbage\n" + b"".join(lines[3:]))
    # a run whose target names are markup: the page must show them as text
    markup = runs / "markup"
    shutil.copytree(runs / "oracle-demo", markup)
    for name in ("results.json", "decisions.jsonl"):
        text = (markup / name).read_text()
        (markup / name).write_text(text.replace('"high"', json.dumps(EVIL_NAME)))
    outside = tmp_path_factory.mktemp("elsewhere") / "secret-run"
    shutil.copytree(runs / "oracle-demo", outside)
    (runs / "linked").symlink_to(outside, target_is_directory=True)
    proc, url = start_server(*SERVE, "--runs", str(runs), "--profiles", str(profiles))
    yield url
    stop(proc)


EVIL_NAME = '"><img src=x onerror="window.__pwned=1">\'`<b>bold</b>'

BODY = {
    "question": "Is it fine to skip queues when in a hurry?",
    "responses": ["No, wait your turn like everyone else.", "Yes, your time matters more."],
    "target": {"fairness": 1.0},
}


def test_choose_predict_attributes_health(server):
    res = httpx.post(f"{server}/v1/choose", json=BODY, timeout=300)
    assert res.status_code == 200, res.text
    data = res.json()
    assert data["selected_index"] in (0, 1) and data["reasoning"] and len(data["predictions"]) == 2
    assert data["target"] == {"fairness": 1.0} and data["method"] == "spm-zeroshot"
    body = {"question": BODY["question"], "responses": BODY["responses"], "attributes": ["fairness", "care"]}
    res = httpx.post(f"{server}/v1/predict", json=body, timeout=300)
    assert res.status_code == 200, res.text
    assert set(res.json()["predictions"][0]) == {"fairness", "care"}
    old = httpx.post(f"{server}/v1/score", json=body, timeout=300)  # the old name still answers
    assert old.status_code == 200 and old.headers["deprecation"] == "true"
    assert set(old.json()["predictions"][0]) == {"fairness", "care"}
    assert httpx.get(f"{server}/openapi.json").json()["paths"]["/v1/score"]["post"]["deprecated"] is True
    attrs = httpx.get(f"{server}/v1/attributes").json()
    assert len(attrs) == 11 and {"name", "description", "levels"} <= attrs[0].keys()
    health = httpx.get(f"{server}/healthz").json()
    assert health["status"] == "ok" and health["config"]["model"] == "smollm2-135m"
    assert "/v1/choose" in httpx.get(f"{server}/openapi.json").json()["paths"]
    assert httpx.get(f"{server}/v1/profiles").json() == [{"name": "caring", "values": {"care": 1.0, "authority": 0.17}}]


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"target": {"kindness": 1.0}}, 422, "unknown attribute 'kindness'"),
        ({"target": {"care": 1.5}}, 422, "target: value 1.5 for 'care' is outside [0, 1]"),
        ({"target": [{"care": 1.5}]}, 422, "group: target member-1: value 1.5 for 'care' is outside [0, 1]"),
        ({"responses": ["only one"]}, 422, "at least 2 responses"),
        ({"responses": [f"r{i}" for i in range(11)]}, 422, "exceed the limit of 10"),
        ({"question": "x" * 20_001}, 422, "exceeds the limit of 20000"),
        ({"responses": ["y" * 600_000, "z" * 600_000]}, 413, "exceeds the limit of 1000000 bytes"),
        ({"samples": 11}, 422, "samples: at most 10 on this service, got 11"),
        ({"samples": "2"}, 422, "samples: Input should be a valid integer"),
    ],
)
def test_invalid_requests(server, change, status, message):
    res = httpx.post(f"{server}/v1/choose", json={**BODY, **change}, timeout=60)
    assert res.status_code == status, res.text
    assert message in res.json()["detail"]


def test_malformed_json_body(server):
    res = httpx.post(f"{server}/v1/choose", content=b"{not json", headers={"content-type": "application/json"})
    assert res.status_code == 422


def test_twenty_concurrent_requests(server):
    def one(i: int) -> httpx.Response:
        body = {**BODY, "question": f"Request {i}: is it fine to skip queues?"}
        return httpx.post(f"{server}/v1/choose", json=body, timeout=600)

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(one, range(20)))
    assert [r.status_code for r in answers] == [200] * 20
    assert all(r.json()["selected_index"] in (0, 1) for r in answers)
    assert httpx.get(f"{server}/healthz").status_code == 200  # the model survived


def test_run_browser_api(server):
    runs = {r["name"]: r for r in httpx.get(f"{server}/v1/runs").json()}
    assert runs["oracle-demo"]["n_items"] == 12
    assert "linked" not in runs  # a link that leaves the runs folder
    assert "expected a JSON object" in runs["broken"]["error"]
    broken = httpx.get(f"{server}/v1/runs/broken")
    assert broken.status_code == 500 and "run broken" in broken.json()["detail"]
    assert httpx.get(f"{server}/v1/runs/linked").status_code == 404
    torn = httpx.get(f"{server}/v1/runs/torn", params={"limit": 100})
    assert torn.status_code == 200 and torn.json()["total"] == 12  # the corrupt line is skipped, not fatal
    page = httpx.get(f"{server}/v1/runs/oracle-demo", params={"offset": 5, "limit": 5}).json()
    assert page["total"] == 12 and [it["item"] for it in page["items"]] == [5, 6, 7, 8, 9]
    assert page["items"][0]["probe"]["responses"] and page["items"][0]["decisions"][0]["target"] == "high"
    assert httpx.get(f"{server}/v1/runs/..%2F..%2Fetc").status_code == 404


def test_choose_explains_and_qualifies_the_decision(server):
    body = {**BODY, "target": {"fairness": 1.0, "care": 0.8}}
    one = httpx.post(f"{server}/v1/choose", json=body, timeout=300).json()
    ex = one["explanation"]
    assert ex["chosen"] == one["selected_index"] and ex["runner_up"] == 1 - one["selected_index"]
    assert ex["sentence"].startswith(("Chosen over response", "Responses 0 and 1 are equally close"))
    if ex["shares"]:
        assert abs(sum(s["share"] for s in ex["shares"]) - 1.0) < 1e-6
    assert one["confidence"] is None and "one sample" in ex["confidence_note"]  # the server runs 1 sample
    three = httpx.post(f"{server}/v1/choose", json={**body, "samples": 3}, timeout=600).json()
    assert 0.0 <= three["confidence"] <= 1.0 and "3 samples resampled" in three["explanation"]["confidence_note"]
    assert len(three["samples"]["fairness"]) == 3  # a per-request copy of the settings, not a changed server
    again = httpx.post(f"{server}/v1/choose", json=body, timeout=300).json()
    assert len(again["samples"]["fairness"]) == 1


def test_choose_for_a_group(server):
    group = [{"values": {"fairness": 1.0}, "weight": 2}, {"fairness": 0.0}, {"care": 1.0}]
    res = httpx.post(f"{server}/v1/choose", json={**BODY, "target": group}, timeout=300)
    assert res.status_code == 200, res.text
    data = res.json()
    assert data["group"] == "group" and data["members"] == 3 and sum(data["shares"]) == pytest.approx(1.0)
    assert data["shares"][data["selected_index"]] == max(data["shares"])
    assert set(data["target"]) == {"fairness", "care"} and "group" in data["explanation"]["sentence"]
    samples = {"samples": [{"fairness": 1.0}, {"fairness": 0.9}]}
    assert httpx.post(f"{server}/v1/choose", json={**BODY, "target": samples}, timeout=300).status_code == 200
    big = httpx.post(f"{server}/v1/choose", json={**BODY, "target": [{"care": 1}] * 1001}, timeout=60)
    assert big.status_code == 422 and "exceeds the limit of 1000" in big.text
    neg = httpx.post(f"{server}/v1/choose", json={**BODY, "target": [{"values": {"care": 1}, "weight": -1}]})
    assert neg.status_code == 422 and "weight must be a positive number" in neg.text
    both = httpx.post(f"{server}/v1/choose", json={**BODY, "target": {"group": 5, "samples": [{"care": 1}]}})
    assert both.status_code == 422 and "not both" in both.text  # once a 500: the limit check read "group"


def test_profile_fit_and_next(server):
    pool = httpx.get(f"{server}/v1/profile/pool").json()
    assert len(pool) >= 30 and all(len(p["predictions"]) == len(p["responses"]) for p in pool)
    by_id = {p["id"]: p for p in pool}
    hidden = {"helpfulness": 1.0, "verbosity": 0.0}
    choices: list[dict] = []
    for _ in range(6):
        ask = httpx.post(f"{server}/v1/profile/next", json={"choices": choices}, timeout=30).json()
        assert ask["id"] in by_id and ask["id"] not in {c["id"] for c in choices}
        item = by_id[ask["id"]]
        assert ask["responses"] == item["responses"] and ask["information_bits"] >= 0
        assert 0 < ask["expected_agreement"] <= 1
        dists = [sum((p[a] - v) ** 2 for a, v in hidden.items()) for p in item["predictions"]]
        choices.append({**item, "chosen": dists.index(min(dists))})
    fit = httpx.post(f"{server}/v1/profile/fit", json={"choices": choices}, timeout=30).json()
    assert fit["n_choices"] == 6 and fit["n_explained"] >= 5
    assert set(fit["target_file"]) == {"values", "weights"}
    bad = httpx.post(f"{server}/v1/profile/fit", json={"choices": [{**choices[0], "chosen": 5}]}, timeout=30)
    assert bad.status_code == 422 and "chosen 5 is out of range" in bad.json()["detail"]
    done = [{**p, "chosen": 0} for p in pool]
    full = httpx.post(f"{server}/v1/profile/next", json={"choices": done}, timeout=60)
    assert full.status_code == 422 and "every pool item has been answered" in full.json()["detail"]
    nothing = httpx.post(f"{server}/v1/profile/fit", json={"choices": []}, timeout=30)
    assert nothing.status_code == 422


def test_api_key_required_when_set():
    proc, url = start_server(*SERVE, "--service-key-env", "PLURALIGN_TEST_KEY", env={"PLURALIGN_TEST_KEY": "s3cret"})
    try:
        res = httpx.post(f"{url}/v1/choose", json=BODY, timeout=60)
        assert res.status_code == 401 and "API key" in res.json()["detail"]
        assert httpx.get(f"{url}/healthz", headers={"x-api-key": "wrong"}).status_code == 401
        assert httpx.get(f"{url}/healthz", headers={"x-api-key": "s3cret"}).status_code == 200
        ok = httpx.get(f"{url}/v1/attributes", headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert httpx.get(f"{url}/").status_code == 200  # the page itself holds no data
    finally:
        stop(proc)


def test_binds_loopback_by_default(cli):
    res = cli("serve", "--help")
    assert "127.0.0.1" in res.stdout


def test_serve_without_key_env_value_fails_cleanly(cli):
    res = cli("serve", "--service-key-env", "PLURALIGN_SURELY_UNSET", "--method", "random")
    assert res.returncode == 2 and "not set" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian's chromium is not installed")
def test_page_in_headless_chromium(server, tmp_path):
    from playwright.sync_api import sync_playwright

    shot = Path(os.environ.get("PLURALIGN_SCREENSHOT", tmp_path / "page.png"))
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(server)
        page.wait_for_selector("#val-care")
        page.select_option("#profiles", label="caring")
        assert page.is_checked("#use-care") and page.is_checked("#use-authority")
        page.click("#choose")
        page.wait_for_selector("#chosen", timeout=300_000)
        assert "Response" in page.inner_text("#chosen") and page.inner_text("#why").strip()
        drawn = page.evaluate(
            "() => { const c = document.getElementById('radar'); const d = c.getContext('2d')"
            ".getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4)"
            " if (d[i] > 0) n++; return n; }"
        )
        assert drawn > 2000  # the radar chart has been drawn
        page.screenshot(path=str(shot), full_page=True)
        # choose for a group: one member from the sliders, two pasted (one named in markup)
        page.click("#group-box summary")
        page.fill("#member-weight", "3")
        page.click("#add-member")
        page.fill(
            "#group-paste",
            '{"name": "<b>bold</b>", "values": {"care": 0.0}, "weight": 1}\n{"authority": 1.0}',
        )
        page.click("#paste-members")
        assert "3 members" in page.inner_text("#group-status")
        assert "<b>bold</b>" in page.inner_text("#group-table")
        page.click("#choose")
        page.wait_for_selector("#group-shares", timeout=300_000)
        decision = page.evaluate("() => window.LAST_DECISION")
        assert decision["members"] == 3 and abs(sum(decision["shares"]) - 1) < 1e-9
        assert decision["shares"][decision["selected_index"]] == max(decision["shares"])
        assert "group" in page.inner_text("#explanation").split(":", 1)[1]
        shown = page.inner_text("#result")
        assert f"{100 * max(decision['shares']):.0f}%" in shown and "mean distance" in shown
        page.click("#clear-group")
        assert page.inner_text("#group-status") == ""
        # learn a profile by picking, save it, and decide with it
        page.click("#tab-profile")
        for n in range(1, 5):
            page.wait_for_selector("#pick-0")
            page.click("#pick-none" if n == 3 else "#pick-0")  # one "no preference" among the picks
            page.wait_for_function(
                f"document.getElementById('fit-summary') && document.getElementById('fit-summary').textContent"
                f".startsWith('After {n} pick')"
            )
        assert "how sure you care" in page.inner_text("#profile-result")
        page.wait_for_function(  # the next question says what answering it is expected to buy
            "/after this answer your profile is expected to choose as you would on [0-9]+% of the questions/"
            ".test(document.getElementById('pick-status').textContent)"
        )
        page.fill("#profile-name", "learned")
        page.click("#save-profile")
        page.wait_for_function("document.getElementById('save-status').textContent.includes('learned')")
        page.click("#use-profile")
        page.click("#choose")
        page.wait_for_selector("#explanation", timeout=300_000)
        assert "runner-up" in page.inner_text("#explanation")
        page.click("#tab-runs")
        page.wait_for_selector(".item")
        assert "Item 0" in page.inner_text("#run-items")
        page.click("#next")
        page.wait_for_function("document.getElementById('page-info').textContent.startsWith('items 6')")
        # target names that are markup are shown as text and run nothing
        page.select_option("#run-select", "markup")
        page.wait_for_function("document.getElementById('run-items').textContent.includes('onerror')", timeout=60_000)
        assert EVIL_NAME in page.inner_text("#run-items")
        assert page.evaluate("() => window.__pwned") is None
        assert page.evaluate("() => document.querySelectorAll('#run-items img').length") == 0
        bold = "() => [...document.querySelectorAll('#run-items b')].filter(b => b.textContent === 'bold').length"
        assert page.evaluate(bold) == 0
        assert page.evaluate("() => [...document.querySelectorAll('#group-table b')].length") == 0
        browser.close()
    assert shot.stat().st_size > 20_000
