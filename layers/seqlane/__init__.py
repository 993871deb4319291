"""seqlane: event-driven DRAGEN pipeline on AWS. Shared by the Lambda handlers, the CLI and the Batch job runner."""

__version__ = "0.1.0"
