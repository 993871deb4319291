"""A small, deterministic demo dataset (reference, truth variants, an Illumina run folder) for local runs."""
