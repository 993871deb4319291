"""The AWS Batch job runner: `seqlane-runner --manifest s3://...` stages and verifies a sample, runs DRAGEN, checks
the engine's read count against the staged one, uploads write-once outputs per job attempt.

Exit codes: the engine's own, or 2 (usage), 3 (region), 4 (input missing or changed), 5 (input invalid),
6 (scratch not writable), 7 (disk full while staging), 8 (S3 unreachable), 9 (read count does not reconcile),
10 (output already exists), 70 (unexpected): the table is in `seqlane.runner.job`.
"""
