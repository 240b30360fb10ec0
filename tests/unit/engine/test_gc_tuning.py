"""The backup and restore paths raise the cyclic collector's thresholds only while they run."""

from __future__ import annotations

import gc
import threading

from snowvault.engine import gc_tuning


def test_thresholds_are_raised_inside_and_put_back_after() -> None:
    before = gc.get_threshold()
    with gc_tuning.fewer_collections():
        inside = gc.get_threshold()
        with gc_tuning.fewer_collections():  # nested: still raised
            assert gc.get_threshold() == inside
        assert gc.get_threshold() == inside  # the inner exit must not restore early
    assert inside[0] >= gc_tuning.THRESHOLDS[0] > before[0]
    assert gc.get_threshold() == before


def test_put_back_after_an_exception() -> None:
    before = gc.get_threshold()
    try:
        with gc_tuning.fewer_collections():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.get_threshold() == before


def test_overlapping_uses_on_two_threads_restore_once_the_last_ends() -> None:
    before = gc.get_threshold()
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_tuning.fewer_collections():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    with gc_tuning.fewer_collections():
        thread.start()
        assert entered.wait(10)
    assert gc.get_threshold() != before  # the other thread's use is still running
    release.set()
    thread.join(10)
    assert gc.get_threshold() == before


def test_a_higher_setting_made_by_the_process_is_kept() -> None:
    before = gc.get_threshold()
    gc.set_threshold(10 * gc_tuning.THRESHOLDS[0], 5, 5)
    try:
        with gc_tuning.fewer_collections():
            assert gc.get_threshold()[0] == 10 * gc_tuning.THRESHOLDS[0]
    finally:
        gc.set_threshold(*before)
