"""`seqlane`: the command line for running seqlane on this machine (and, later, operating it in AWS)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Event-driven DRAGEN pipeline on AWS.")
local_app = typer.Typer(no_args_is_help=True, help="The pipeline on an embedded AWS (moto) on this machine.")
app.add_typer(local_app, name="local")

EXIT_BAD_INPUT = 2
_STATE_STYLES = {
    "SUCCEEDED": "green",
    "FAILED": "red",
    "TIMED_OUT": "red",
    "ABORTED": "red",
    "CONFLICT": "bold red",
    "INCOMPLETE": "yellow",
    "RECEIVING": "yellow",
}

LocalOption = Annotated[
    bool, typer.Option("--local", help="Use the stack started by `seqlane local up` (default: a private one).")
]
RegionOption = Annotated[str | None, typer.Option(help="AWS region of the embedded stack [default: eu-west-2].")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of tables.")]


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    Console(file=sys.stderr).print(f"seqlane: error: {message}", style="bold red", highlight=False, soft_wrap=True)
    return typer.Exit(code)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: unwinds the command so every context (host, runners, scratch) is closed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # as a shell reports a process ended by the signal: 130 SIGINT, 143 SIGTERM


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM raise Interrupted in the main thread, once: a second signal while stopping is ignored, so
    the clean-up it started is not cut short."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def interrupt(signum: int, _frame) -> None:
        for ignored in previous:
            signal.signal(ignored, signal.SIG_IGN)
        # Threads of the stopping stack (moto's Step Functions workers) log their lost connections: not the user's
        # business, and not on the terminal once the log file is closed.
        logging.disable(logging.CRITICAL)
        raise Interrupted(signum)

    for signum in previous:
        signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def _quiet(log_path: Path) -> Iterator[None]:
    """Handler, moto and runner logs go to a file, so stdout holds only the progress view or the JSON."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log, redirect_stdout(log), redirect_stderr(log):
        yield


class _ProgressView:
    """Samples and their state, redrawn on every poll of the catalog."""

    def __init__(self, console: Console, enabled: bool) -> None:
        # Live must not capture stdout: `_quiet` sends it to the log while the view is drawn on `console`.
        self.live = (
            Live(self._table([]), console=console, transient=True, redirect_stdout=False, redirect_stderr=False)
            if enabled
            else None
        )

    def __enter__(self) -> _ProgressView:
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.live:
            self.live.__exit__(*exc_info)

    def update(self, states: list[dict[str, str]]) -> None:
        if self.live:
            self.live.update(self._table(states))

    @staticmethod
    def _table(states: list[dict[str, str]]) -> Table:
        table = Table(title="seqlane: samples", title_justify="left")
        table.add_column("Sample")
        table.add_column("State")
        for state in states:
            table.add_row(state["sample_id"], _styled(state["state"]))
        if not states:
            table.add_row("(uploading)", "")
        return table


def _styled(status: str) -> str:
    return f"[{_STATE_STYLES.get(status, 'cyan')}]{status}"


def _accounting_line(accounting: dict[str, Any] | None) -> str | None:
    """Where every uploaded file ended, in one line (and which ones ended nowhere)."""
    if not accounting:
        return None
    line = (
        f"Accounted for: {accounting['uploaded']} uploaded = {accounting['in_manifests']} in manifests + "
        f"{accounting['ignored']} ignored + {accounting['in_conflict']} in conflict"
    )
    if not accounting["balanced"]:
        unaccounted = accounting.get("unaccounted") or []
        line = f"[red]{line}; unaccounted: {', '.join(unaccounted) or 'the counts do not add up'}"
    return line


def _rerun_lines(reruns: list[dict[str, Any]]) -> list[str]:
    return [
        f"Re-analysed {rerun['sample_id']} as attempt {rerun['attempt']} (its last analysis was "
        f"{rerun['previous_status']}: {rerun['previous_reason'] or 'no reason recorded'})"
        for rerun in reruns
    ]


def _summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"Run {summary['run_id']} ({summary['region']})", title_justify="left")
    table.add_column("Sample", overflow="fold")
    table.add_column("Status", no_wrap=True)
    for column in ("Engine", "Reads", "Mapped %", "Recall", "Precision"):
        table.add_column(column, justify="right")
    table.add_column("Outputs / error", overflow="fold")
    for sample in summary["samples"]:
        metrics, concordance = sample.get("metrics") or {}, sample.get("concordance") or {}
        mapped = metrics.get("mapped_reads_pct")
        table.add_row(
            sample["sample_id"],
            _styled(sample["status"]),
            sample.get("engine") or "",
            str(metrics.get("total_input_reads", "")),
            f"{mapped:.2f}" if isinstance(mapped, int | float) else "",
            f"{concordance['recall']:.3f}" if concordance else "",
            f"{concordance['precision']:.3f}" if concordance else "",
            sample["error"] or f"{len(sample['outputs'])} files",
        )
    return table


def _report(summary: dict[str, Any], as_json: bool, console: Console) -> None:
    if as_json:
        print(json.dumps(summary, indent=2))  # plain, so it can be piped whether or not stdout is a terminal
        return
    console.print(_summary_table(summary))
    accounting = _accounting_line(summary.get("accounting"))
    if accounting:
        console.print(accounting, highlight=False)
    for line in _rerun_lines(summary.get("rerun") or []):
        console.print(line, highlight=False)
    if summary.get("concordance"):
        c = summary["concordance"]
        console.print(
            f"Against the truth set: recall {c['recall']:.3f}, precision {c['precision']:.3f} "
            f"({c['true_positives']} found, {c['false_negatives']} missed, {c['false_positives']} false calls)"
        )
    copied = [s["local_outputs"] for s in summary["samples"] if s.get("local_outputs")]
    if copied:
        console.print(f"Outputs copied to {Path(copied[0]).parent}/<sample_id>/", highlight=False)
    console.print(f"Events published: {', '.join(summary['events']) or 'none'}")
    for entry in summary["ignored"]:
        console.print(f"Ignored {entry['key']}: {entry['reason']}", highlight=False)
    if summary.get("dead_letters"):
        console.print(f"[red]{summary['dead_letters']} events were dead-lettered: see the log")
    console.print(f"Finished in {summary['wall_seconds']} s; log: {summary['log']}", highlight=False)


def _run(
    request,
    *,
    use_background: bool,
    region: str | None,
    as_json: bool,
    workdir: Path,
) -> dict[str, Any]:
    from seqlane.local.client import StackNotFound
    from seqlane.local.control import LocalStackUnavailable, target
    from seqlane.local.run import RunInputError, check_request, execute

    console = Console(file=sys.stdout)  # bound now: stdout is redirected to the log during the run
    try:  # refuse bad input before starting anything
        check_request(request)
    except RunInputError as err:
        raise _fail(str(err)) from None
    log_path = workdir / "seqlane-local.log"
    scratch = workdir / "scratch"
    started = time.monotonic()
    try:
        with (
            _interruptible(),
            _ProgressView(console, enabled=not as_json) as view,
            _quiet(log_path),
            target(use_background, region, host_scratch=scratch) as client,
        ):
            summary = execute(client, request, on_progress=view.update)
    except (LocalStackUnavailable, StackNotFound, RunInputError, TimeoutError) as err:
        raise _fail(f"{err} (log: {log_path})", code=1) from None
    except Interrupted as stop:
        name = signal.Signals(stop.signum).name
        if use_background:  # its jobs belong to the background stack, which goes on running them
            raise _fail(f"interrupted by {name}: the background stack goes on with the run", stop.exit_code) from None
        # The private host stopped its runners on the way out; what they left in scratch goes too.
        shutil.rmtree(scratch, ignore_errors=True)
        raise _fail(f"interrupted by {name}: runners stopped, scratch removed", stop.exit_code) from None
    summary["log"] = str(log_path)
    summary["wall_seconds"] = round(time.monotonic() - started, 1)
    _report(summary, as_json, console)
    return summary


@app.command()
def demo(
    as_json: JsonOption = False,
    local: LocalOption = False,
    region: RegionOption = None,
    workdir: Annotated[Path, typer.Option(help="Where the demo data, outputs and logs go.", file_okay=False)] = Path(
        "seqlane-demo"
    ),
    seed: Annotated[int, typer.Option(help="Dataset and upload-order seed.")] = 7,
) -> None:
    """Run the bundled demo (3 samples x 2 lanes, planted variants) end to end and score the calls."""
    from seqlane.demo.dataset import generate
    from seqlane.local.run import RunRequest, exit_status

    dataset = generate(workdir / "data", seed=seed)
    request = RunRequest(
        run_dir=dataset.run_dir,
        reference=dataset.reference_fasta,
        truth_vcf=dataset.truth_vcf,
        out_dir=workdir / "outputs",
        seed=seed,
    )
    summary = _run(request, use_background=local, region=region, as_json=as_json, workdir=workdir)
    raise typer.Exit(exit_status(summary))


@app.command()
def plan(
    source: Annotated[str, typer.Argument(help="A local run folder, or s3://bucket/[path/]run/ (only listed).")],
    as_json: JsonOption = False,
) -> None:
    """Dry run of ingest: which samples, fastq-list rows, modality, what is missing, what is ignored and why."""
    console = Console(file=sys.stdout)  # bound now: the ingest code's own logs go to /dev/null below
    with _quiet(Path(os.devnull)):
        from seqlane.local.plan import PlanSourceError, local_objects, plan, s3_objects

        try:
            objects = s3_objects(source) if source.startswith("s3://") else local_objects(Path(source))
            result = plan(objects)
        except PlanSourceError as err:
            error: PlanSourceError | None = err
        else:
            error = None
    if error is not None:
        raise _fail(str(error))
    if as_json:
        print(json.dumps(result, indent=2))
        return
    table = Table(title=f"Plan for run {result['run_id']}", title_justify="left")
    for column in ("Sample", "Status", "Modality", "Complete", "Lanes", "Missing", "Conflict"):
        table.add_column(column, overflow="fold")
    for sample in result["samples"]:
        table.add_row(
            sample["sample_id"],
            _styled(sample.get("status") or ""),
            sample["modality"],
            "[green]yes" if sample["complete"] else "[yellow]no",
            ", ".join(row["Lane"] for row in sample["fastq_list"]),
            "; ".join(sample["missing"]),
            "; ".join(f"{c['reason']}: {', '.join(c['keys'])}" for c in sample.get("conflicts") or []),
        )
    console.print(table)
    accounting = _accounting_line(result.get("accounting"))
    if accounting:
        console.print(accounting, highlight=False)
    sheet = result["sample_sheet"]
    if sheet["error"]:
        console.print(f"[red]Sample sheet rejected: {sheet['error']}", highlight=False)
    elif sheet["key"]:
        console.print(f"Sample sheet: {sheet['key']}", highlight=False)
    console.print("Completion marker: " + ("present" if result["closed_by_marker"] else "not yet"))
    for entry in result["ignored"]:
        console.print(f"Ignored {entry['key']}: {entry['reason']}", highlight=False)


@local_app.command("run")
def local_run(  # noqa: PLR0917 - typer reads the command's options from its parameters
    run_dir: Annotated[Path, typer.Argument(help="A run folder of Illumina-named FASTQs (its name is the run id).")],
    reference: Annotated[
        Path | None, typer.Option(help="Reference FASTA for the CPU engine (default: the stack's current one).")
    ] = None,
    truth: Annotated[Path | None, typer.Option(help="Truth VCF: report recall and precision per sample.")] = None,
    region: RegionOption = None,
    out: Annotated[Path | None, typer.Option(help="Copy each sample's outputs to OUT/<sample_id>/.")] = None,
    as_json: JsonOption = False,
    local: LocalOption = False,
    seed: Annotated[int, typer.Option(help="Upload order and duplicated-delivery seed.")] = 0,
) -> None:
    """Upload RUN_DIR to the embedded ingest bucket as a sequencer would, and run it to completion."""
    import tempfile

    from seqlane.local.run import RunRequest, exit_status

    request = RunRequest(run_dir=run_dir, reference=reference, truth_vcf=truth, out_dir=out, seed=seed)
    with tempfile.TemporaryDirectory(prefix="seqlane-run-") as scratch:
        workdir = out if out is not None else Path(scratch)
        summary = _run(request, use_background=local, region=region, as_json=as_json, workdir=workdir)
    raise typer.Exit(exit_status(summary))


@local_app.command("up")
def local_up(
    region: Annotated[str, typer.Option(help="AWS region of the embedded stack.")] = "eu-west-2",
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free one).", min=0, max=65535)] = 0,
) -> None:
    """Start the embedded stack in the background (until `seqlane local down`)."""
    from seqlane.local.control import LocalStackUnavailable, inspect_background, start_background, state_file

    _, stale = inspect_background()  # a stale state file is removed here, and said so
    if stale is not None:
        Console().print(f"removed the stale state file {stale.path} ({stale.reason})", highlight=False)
    try:
        stack, already = start_background(region=region, port=port)
    except LocalStackUnavailable as err:
        raise _fail(str(err), code=1) from None
    Console().print(
        f"seqlane local stack {'already ' if already else ''}running at {stack.endpoint} "
        f"({stack.region}, pid {stack.pid}; state {state_file()}).\n"
        f"Use `--local`, or: export AWS_ENDPOINT_URL={stack.endpoint} AWS_DEFAULT_REGION={stack.region}",
        highlight=False,
    )


@local_app.command("down")
def local_down() -> None:
    """Stop the background embedded stack (its state is discarded)."""
    from seqlane.local.control import LocalStackUnavailable, stop_background

    try:
        stopped, stale = stop_background()
    except LocalStackUnavailable as err:
        raise _fail(str(err), code=1) from None
    if stopped:
        message = f"stopped the local stack at {stopped.endpoint} (pid {stopped.pid})"
    elif stale:
        message = f"no local stack was running: removed the stale state file {stale.path} ({stale.reason})"
    else:
        message = "no local stack was running"
    Console().print(message, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    app()
