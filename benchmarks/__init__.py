"""``make bench``: speed measurements, each reported as a ratio against a baseline measured
in the same run (shared machines are noisy; absolute numbers alone mislead)."""
