# Job image for the DRAGEN AWS Batch job: only the seqlane runner (seqlane-runner --manifest s3://...).
# DRAGEN itself is not in the image: the job definition mounts the DRAGEN AMI's /opt/edico from the host,
# so the binary is /opt/edico/bin/dragen (DRAGEN_BIN, also set by the job definition) and its licence and
# FPGA tooling stay those of the AMI.
FROM public.ecr.aws/docker/library/python:3.12-slim

# Unbuffered so log lines reach CloudWatch as they happen, interleaved with DRAGEN's own output.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DRAGEN_BIN=/opt/edico/bin/dragen \
    SEQLANE_SCRATCH=/scratch

WORKDIR /build
COPY pyproject.toml README.md ./
COPY layers/ layers/
RUN pip install --no-cache-dir . && rm -rf /build
WORKDIR /scratch

# No USER: the container stays root because DRAGEN needs privileged access to the FPGA devices
# (the job definition sets Privileged: true), which a non-root user does not get.
ENTRYPOINT []
CMD ["seqlane-runner", "--help"]
