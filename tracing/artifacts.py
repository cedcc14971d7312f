"""Fitted models through Django's storage API (the "artifacts" storage in settings.STORAGES): the file
system by default, S3-compatible object storage as the option for more than one machine, so any web
process or worker loads the course's active fit wherever it was fitted."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages

from tracing.estimators import get_estimator
from tracing.estimators.base import Estimator


class ArtifactFileSystemStorage(FileSystemStorage):
    """The file system under settings.ARTIFACT_ROOT, read when used rather than when the storage is
    built, so a changed setting (a test's own folder) takes effect at once."""

    @property  # type: ignore[override]
    def base_location(self) -> str:
        return str(self._value_or_setting(self._location, settings.ARTIFACT_ROOT))

    @property  # type: ignore[override]
    def location(self) -> str:
        return os.path.abspath(self.base_location)


def artifact_storage() -> Storage:
    return storages["artifacts"]


def artifact_save(*, estimator: Estimator, name: str) -> str:
    """Store ``estimator``'s one-file artifact under ``name`` (e.g. "course/fit-12.bkt"); returns the name it
    was stored under (a storage never overwrites: a retried fit's second artifact gets a name of its own)."""
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / Path(name).name
        estimator.save(local)
        with local.open("rb") as handle:
            return artifact_storage().save(name, File(handle, name=local.name))


def artifact_load(*, kind: str, name: str) -> Estimator:
    """The estimator of kind ``kind`` stored under ``name``."""
    return get_estimator(kind).load(_local_path(name))


def _local_path(name: str) -> Path:
    storage = artifact_storage()
    try:
        return Path(storage.path(name))  # a file system: read in place
    except NotImplementedError:
        pass
    # Object storage: one download per process and artifact; an artifact never changes after it is
    # written, so a copy that exists is current. Written beside, then renamed: readers never see half.
    local = Path(settings.TUTOR_ARTIFACT_CACHE) / name
    if not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=local.parent, prefix=".partial-")
        try:
            with os.fdopen(handle, "wb") as out, storage.open(name, "rb") as remote:
                for chunk in iter(lambda: remote.read(1 << 20), b""):
                    out.write(chunk)
            os.replace(partial, local)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    return local


def artifact_learner_rename(data: bytes, *, learner: str, replacement: str) -> bytes | None:
    """The artifact ``data`` with the learner ``learner`` renamed ``replacement`` in the list of learners
    that models with per-learner parameters (hbkt, psikt: one .npz whose ``meta`` JSON names them in
    slot order) keep; None where the artifact names no learners or not this one. The slots and their
    arrays stay as they are: only the name that ties a slot to a person goes."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return None
    with np.load(io.BytesIO(data)) as archive:
        if "meta" not in archive.files:
            return None
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays.pop("meta").tobytes().decode())
    learners = meta.get("learners")
    if not isinstance(learners, list) or learner not in learners:
        return None
    meta["learners"] = [replacement if name == learner else name for name in learners]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    return buffer.getvalue()


def artifact_learner_forget(*, name: str, learner: str, replacement: str) -> str | None:
    """Store a copy of the artifact ``name`` that no longer names ``learner`` (artifact_learner_rename),
    under a name of its own (artifacts never change once written: processes cache them by name), and
    return that name; None where the artifact did not name the learner. The caller points the fit at
    the copy and deletes the original once that commits (artifact_delete)."""
    storage = artifact_storage()
    with storage.open(name, "rb") as handle:
        renamed = artifact_learner_rename(handle.read(), learner=learner, replacement=replacement)
    if renamed is None:
        return None
    stem, dot, suffix = name.rpartition(".")
    return storage.save(f"{stem}-scrubbed{dot}{suffix}" if dot else f"{name}-scrubbed", ContentFile(renamed))


def artifact_delete(*, name: str) -> None:
    """Delete the artifact ``name`` from the storage and from this machine's download cache."""
    artifact_storage().delete(name)
    local = Path(settings.TUTOR_ARTIFACT_CACHE) / name
    if local.exists():
        local.unlink()
