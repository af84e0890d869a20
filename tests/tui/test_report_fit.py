"""The pre-flight report in a box narrower than its 80 columns (review/report.py: fit_lines)."""

from __future__ import annotations

from tuitrain.tui.review.report import fit_lines

REPORT = "\n".join([
    "Concepts",
    "  name       images  repeats  samples  caption",
    "  faery-set       5        1        5  per-image",
    "Files not used (train skips them) (2)",
    "    - faery-set/an_unreadable_picture_with_a_rather_long_name.png: not an image:",
    "      the file holds text",
    "    - faery-set/tiny.png: empty file (13 bytes, not processed)",
])


def test_an_item_the_report_wrapped_is_wrapped_again_at_the_box_under_its_text() -> None:
    lines = fit_lines(REPORT, 70).splitlines()
    assert lines[4:7] == [
        "    - faery-set/an_unreadable_picture_with_a_rather_long_name.png: not",
        "      an image: the file holds text",
        "    - faery-set/tiny.png: empty file (13 bytes, not processed)",
    ]
    assert all(len(line) <= 70 for line in lines)


def test_a_name_longer_than_the_box_stays_whole_after_its_bullet() -> None:
    lines = fit_lines(REPORT, 40).splitlines()
    assert "    - faery-set/an_unreadable_picture_with_a_rather_long_name.png:" in lines


def test_table_rows_and_short_lines_stay_as_they_are() -> None:
    lines = fit_lines(REPORT, 74).splitlines()
    assert lines[:4] == REPORT.splitlines()[:4]
    assert "(13 bytes, not processed)" in lines[-1]


def test_at_80_columns_the_text_is_untouched() -> None:
    assert fit_lines(REPORT, 80) == REPORT
