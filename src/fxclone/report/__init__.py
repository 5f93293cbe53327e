"""Evaluation output for people: plots (:mod:`fxclone.report.plots`) and, beside them, the
HTML report and listening tests that ``fxclone evaluate`` and ``fxclone abx`` produce."""
