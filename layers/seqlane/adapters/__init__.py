"""boto3 implementations of seqlane.ports, and the factories handlers use. The only layer that imports boto3."""
