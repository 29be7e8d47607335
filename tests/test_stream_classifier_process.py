import gc

from stream.classifier_process import freeze_startup_heap


def test_freeze_startup_heap_takes_live_objects_out_of_collections() -> None:
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 1000  # the interpreter's, pytest's, this module's
    finally:
        gc.unfreeze()
