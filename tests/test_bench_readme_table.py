"""The README's short benchmark table, cut from the full one `make bench` writes."""

from __future__ import annotations


def test_the_readme_table_keeps_its_rows_and_points_at_the_full_one() -> None:
    from bench.run import README_ROWS, readme_table

    full = "\n".join(
        [
            "Measured by `make bench` on a day.",
            "",
            "| measure | result |",
            "| --- | --- |",
            "| model ceiling: at batch 2048 | 64,754 msgs/s |",
            "| model, one call at a time on every core, batch 1 | 989 msgs/s |",
            "| pipeline drain (50,000 msgs) | 27,572 msgs/s |",
            "| classifier start-up to ready | 3.6 s |",
        ]
    )
    short = readme_table(full + "\n")
    assert "Measured by `make bench` on a day." in short and "| --- | --- |" in short
    assert "batch 1 |" not in short  # not one of README_ROWS
    kept = [line for line in short.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(kept) == 4 and all(
        row.removeprefix("| ").startswith(("measure", *README_ROWS)) for row in kept
    )
    assert short.rstrip().endswith("`bench/results/latest.md`.")
