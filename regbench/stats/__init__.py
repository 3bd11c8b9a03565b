"""regbench's statistics as a library of pure functions over arrays (numpy and scipy only): the
paired and unpaired tests with their intervals (`inference`), verdicts, TOST and planned seeds
(`decide`), and the group-sequential design of staged studies (`sequential`). Nothing here reads
a run folder or a config; `compare` and `stages` both build on it."""
