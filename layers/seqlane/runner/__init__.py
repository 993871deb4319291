"""The AWS Batch job runner: `seqlane-runner --manifest s3://...` stages a sample, runs DRAGEN, uploads.

Exit codes: DRAGEN's own, or 2 (bad manifest, unsupported modality, no engine binary), 3 (manifest pinned to
another region), 4 (an input is missing or changed since the manifest was written).
"""
