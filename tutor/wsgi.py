import gc
import os

from django.core.signals import request_started
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
application = get_wsgi_application()


def _freeze_long_lived() -> None:
    """Load what every request uses, then move it out of the garbage collector's reach.

    A full collection scans every tracked object: in a server process that is
    Django, DRF, numpy, numba and the URLconf's modules, and it took 60-150 ms per
    collection under load (bench/load.py), a pause for every request queued on the
    process. Frozen objects are never scanned again, so a collection only walks
    what requests created.
    """
    from django.urls import get_resolver

    import tracing.estimators.bkt  # noqa: F401 - the default model; other kinds load with their first fit

    _ = get_resolver().url_patterns  # imports the views and, through them, the services
    gc.collect()
    gc.freeze()


_freeze_long_lived()


def _start_fit_runner(**kwargs: object) -> None:
    """Without a broker, fits run on a thread of this server process: start it with the first request
    (not at import: a forked worker needs its own, and the first request sees the final settings), so
    fits a previous process left are resumed. Once per process."""
    from tracing.services import fits_background_start

    request_started.disconnect(_start_fit_runner)
    fits_background_start()


request_started.connect(_start_fit_runner)
