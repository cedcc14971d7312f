"""Fitted models go through the artifacts storage: the file system by default, S3-compatible object
storage (django-storages) for more than one machine, tested against moto's S3 server."""

from __future__ import annotations

import shutil

import pytest

from curriculum.services import course_from_document, curriculum_import
from tracing import services
from tracing.artifacts import artifact_storage
from tracing.models import Fit
from tutor.actions import fit_start
from tutor.demo import demo_document, demo_history_simulate

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BUCKET = "tutor-fits"
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


@pytest.fixture
def s3(settings, tmp_path):
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "location": "artifacts",
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "access_key": "test",
                "secret_key": "test",
                "file_overwrite": False,
                "default_acl": None,
            },
        },
    }
    settings.TUTOR_ARTIFACT_CACHE = tmp_path / "downloaded"
    settings.ARTIFACT_ROOT = tmp_path / "not-used"
    yield client
    server.stop()


def _course_with_answers():
    document = demo_document()
    course, _ = course_from_document(document=document)
    curriculum_import(course=course, document=document)
    demo_history_simulate(course=course, document=document, learners=12, answers=20)
    return course


@pytest.mark.django_db
def test_a_fit_saved_to_object_storage_is_loaded_by_another_process(s3, settings, django_capture_on_commit_callbacks):
    course = _course_with_answers()
    with django_capture_on_commit_callbacks(execute=True):
        fit = fit_start(course=course, kind="bkt", params={"restarts": 1, "max_iter": 20}, inline=True)
    fit.refresh_from_db()
    assert fit.status == Fit.SUCCEEDED, fit.error
    stored = [entry["Key"] for entry in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert stored == [f"artifacts/{fit.artifact}"] and fit.artifact == f"{course.slug}/fit-{fit.pk}.bkt"
    assert not settings.ARTIFACT_ROOT.exists()  # nothing went to the local file system

    # Another machine: no model in memory, no downloaded copy; it reads the fit from the bucket.
    services.course_model_forget(course)
    shutil.rmtree(settings.TUTOR_ARTIFACT_CACHE, ignore_errors=True)
    model = services.course_model(course)
    assert model.fit.pk == fit.pk
    assert (settings.TUTOR_ARTIFACT_CACHE / fit.artifact).is_file()
    fitted = services.course_model(course).estimator
    assert fitted.skill_ids == model.estimator.skill_ids


@pytest.mark.django_db
def test_the_file_system_is_the_default_and_never_overwrites(settings, tmp_path, django_capture_on_commit_callbacks):
    settings.ARTIFACT_ROOT = tmp_path / "fits"
    course = _course_with_answers()
    with django_capture_on_commit_callbacks(execute=True):
        fit = fit_start(course=course, kind="rate", inline=True)
    fit.refresh_from_db()
    assert fit.status == Fit.SUCCEEDED, fit.error
    assert (settings.ARTIFACT_ROOT / fit.artifact).is_file()
    storage = artifact_storage()
    with storage.open(fit.artifact, "rb") as handle:
        again = storage.save(fit.artifact, handle)
    assert again != fit.artifact  # a second artifact under the same name gets a name of its own
