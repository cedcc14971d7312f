"""Fitted models through Django's storage API (the "artifacts" storage in settings.STORAGES): the file
system by default, S3-compatible object storage as the option for more than one machine, so any web
process or worker loads the course's active fit wherever it was fitted."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
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
