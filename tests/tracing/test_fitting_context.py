"""Pyro's settings are process-wide: two fitting contexts of one process (a background fit and a trait
refresh of the embedded default) must not end each other's."""

from __future__ import annotations

import threading
import time

import pyro

from tracing.estimators.pyro_common import fitting_context


def test_a_fitting_context_ending_leaves_another_threads_settings_alone():
    first_inside = threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with fitting_context(threads=1):
            first_inside.set()
            time.sleep(0.3)  # the second thread tries to enter meanwhile

    def second() -> None:
        first_inside.wait(5)
        with fitting_context(threads=1):
            time.sleep(0.5)  # without turns, the first context ends here and restores its setting
            seen.append(pyro.settings.get("module_local_params"))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == [True]
