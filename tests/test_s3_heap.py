"""The S3 reader takes start-up's heap out of the garbage collector's reach, once."""

from __future__ import annotations

import gc

from awscollector.io.s3 import freeze_startup_heap


def test_startup_heap_is_frozen_once_per_process():
    freeze_startup_heap()
    frozen = gc.get_freeze_count()
    assert frozen > 0  # this test session's modules, at least
    later = [[n] for n in range(1000)]  # tracked containers, made after start-up
    freeze_startup_heap()  # a second reader's setup: what came since stays collectable
    assert gc.get_freeze_count() == frozen, f"the {len(later)} later lists were frozen too"
