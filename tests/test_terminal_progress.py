"""The command line's progress: tqdm bars, a total that arrives later, downloads in bytes."""

from __future__ import annotations

import io
import threading

from batch_classifier.terminal_progress import ImageProgress, download_progress


def test_a_run_stopped_before_its_count_came_back_shows_a_count_not_a_fraction() -> None:
    stream = io.StringIO()
    progress = ImageProgress(stream=stream)
    progress.update(2, 0)
    progress.close()
    last = stream.getvalue().rsplit("\r", 1)[-1]
    assert "2img" in last and "/" not in last.replace("img/s", "")


def test_the_total_arrives_from_the_counting_thread_and_the_bar_shows_it() -> None:
    stream = io.StringIO()
    progress = ImageProgress(stream=stream)
    progress.update(2, 0)
    counter = threading.Thread(target=progress.set_total, args=(5,))
    counter.start()
    counter.join()
    progress.update(5, 1)
    progress.close()
    last = stream.getvalue().rsplit("\r", 1)[-1]
    assert "5/5" in last and "100%" in last and "1 error]" in last and "img/s" in last


def test_a_total_below_the_rows_already_written_never_shows_more_than_100_percent() -> None:
    stream = io.StringIO()
    progress = ImageProgress(stream=stream)
    progress.set_total(3)  # a count that stopped early
    progress.update(4, 0)
    progress.close()
    assert "4/4" in stream.getvalue().rsplit("\r", 1)[-1]


def test_a_download_is_shown_in_bytes_with_or_without_a_length() -> None:
    stream = io.StringIO()
    progress = download_progress(stream)
    progress(0, 3 * 2**20)
    progress(3 * 2**20, 3 * 2**20)
    assert "3.00M/3.00M" in stream.getvalue() and "B/s" in stream.getvalue()
    stream = io.StringIO()
    unknown = download_progress(stream)
    unknown(5 * 2**20, None)
    unknown.close()
    assert "5.00MB" in stream.getvalue(), "no Content-Length: bytes counted, no percentage"
