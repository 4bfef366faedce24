"""Benchmarks: the project's fast paths measured against the seed notebook's way, side by side.

Run one with `python -m benchmarks.NAME`, all with `python -m benchmarks` (`make bench`);
`--quick` runs fewer repetitions. Each script prints the median and the spread of its
measurements, then the ratio to the notebook's way (or to the target) on its last line.
Figures from one run on one machine are in `benchmarks/RESULTS.md`.
"""
