"""One parse of botocore's data files per process, shared by every session.

botocore caches what its loader parses, but per session: each new `boto3.Session` (one per assumed role, per
account, per test, and inside the SageMaker SDK and moto) parses `endpoints.json`, the service model, its
endpoint rule set and paginators again, about 70-150 ms per fresh session's first client.

botocore already hands the same parsed objects to every client of a session, so sharing them across sessions is
safe for data nobody writes to. Two things write:
- the loader's extras merge (`ExtrasProcessor`, a deep merge of an `*.sdk-extras.json` file into the model),
  which is idempotent: merging the same extras into the same model again changes nothing;
- botocore's S3 and S3 Control handlers (`remove_bucket_from_url_paths_from_model`,
  `remove_accid_host_prefix_from_model` in botocore/handlers.py) rewrite operations' `requestUri`,
  `authPath` and `hostPrefix` in place at a client's first call. Shared, that would change the model under
  every other session of the process (moto's router, in the twin, would then build its routes from a
  rewritten model). Those two services' files are never shared: each session parses its own, as botocore does.

`share()` makes `JSONFileLoader.load_file` keep what it parsed, keyed by the file's path, size and
modification time, so a data file that changes (a user's own `AWS_DATA_PATH`) is read again. It patches
botocore's pinned loader (requirements.lock); if that loader does not have the shape this relies on, it
leaves botocore as it is and says so in `shared()`.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import botocore.loaders

_CACHE: dict[tuple[str, int, int], Any] = {}
# The data folders of the services whose models botocore rewrites at run time (see above).
_WRITTEN_AT_RUN_TIME = frozenset({"s3", "s3control"})
_LOCK = threading.Lock()
_ORIGINAL = botocore.loaders.JSONFileLoader.load_file


def _load_file(self: botocore.loaders.JSONFileLoader, file_path: str) -> Any:
    """What `JSONFileLoader.load_file` returns, parsed once per file version in this process."""
    if _WRITTEN_AT_RUN_TIME.intersection(os.path.normpath(file_path).split(os.sep)):
        return _ORIGINAL(self, file_path)
    # botocore's private helpers (the pinned botocore has them: share() checks before it patches).
    open_methods: dict[str, Any] = getattr(botocore.loaders, "_JSON_OPEN_METHODS")  # noqa: B009
    for extension, open_method in open_methods.items():
        full_path = file_path + extension
        try:
            stat = os.stat(full_path)
        except OSError:
            continue
        key = (full_path, stat.st_size, stat.st_mtime_ns)
        with _LOCK:
            if key in _CACHE:
                return _CACHE[key]
        data = getattr(self, "_load_file")(full_path, open_method)  # noqa: B009
        if data is not None:
            with _LOCK:
                # Two threads may parse the same file at once: every caller then gets the first one's objects.
                return _CACHE.setdefault(key, data)
    return None


def shared() -> bool:
    return botocore.loaders.JSONFileLoader.load_file is _load_file


def share() -> bool:
    """Share parsed data files between this process's sessions (idempotent); False if botocore's loader
    is not the one this was written against (then nothing changes)."""
    loader = botocore.loaders.JSONFileLoader
    if shared():
        return True
    if not (hasattr(botocore.loaders, "_JSON_OPEN_METHODS") and hasattr(loader, "_load_file")):
        return False
    loader.load_file = _load_file  # type: ignore[method-assign]
    return True


def unshare() -> None:
    """botocore's own loader again, and the parsed files forgotten (for tests)."""
    botocore.loaders.JSONFileLoader.load_file = _ORIGINAL  # type: ignore[method-assign]
    with _LOCK:
        _CACHE.clear()
