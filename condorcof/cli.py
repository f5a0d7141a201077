"""The ``condorcof`` command: a thin layer over the library.

Every command calls library functions; :func:`main` is the one place that turns library
errors into a clean message and an exit code.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from condorcof import __version__
from condorcof.errors import CondorcofError

EXIT_INTERRUPTED = 130


def _plan_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command that plans a run."""
    options = [
        click.option(
            "--treename",
            default="Events",
            show_default=True,
            help="Tree for files given without one.",
        ),
        click.option(
            "--chunksize",
            type=click.IntRange(min=1),
            default=100_000,
            show_default=True,
            help="Target entries per chunk.",
        ),
        click.option(
            "--max-chunks",
            type=click.IntRange(min=1),
            default=None,
            help="At most this many chunks per dataset (for quick tests).",
        ),
        click.option(
            "--merge-fanin",
            type=click.IntRange(min=2),
            default=16,
            show_default=True,
            help="Inputs per merge node.",
        ),
        click.option(
            "--skip-bad-files",
            is_flag=True,
            help="Leave out files that cannot be read (they are recorded in the result).",
        ),
        click.option(
            "--no-cache", is_flag=True, help="Do not reuse or update the file metadata cache."
        ),
        click.option(
            "--processor-args",
            "processor_args",
            default=None,
            metavar="JSON",
            help="Keyword arguments for the processor, as a JSON object.",
        ),
        click.option(
            "--schema",
            type=click.Choice(["nanoaod", "coffea"]),
            default="nanoaod",
            show_default=True,
            help="Events: condorcof's lazy NanoAOD events, or coffea's NanoEvents (needs coffea).",
        ),
        click.option(
            "--allow-incomplete",
            is_flag=True,
            help="Write a result even if chunks are missing (their fraction is recorded).",
        ),
        click.option(
            "--redirector",
            "redirectors",
            multiple=True,
            metavar="URL",
            help="XRootD redirector to retry a root:// file through (repeatable, in order).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class CommandError(click.ClickException):
    """A library error shown as one clean message with the error's exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class CondorcofGroup(click.Group):
    """The one place where library errors and Ctrl-C become messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CondorcofError as err:
            raise CommandError(str(err), err.exit_code) from err
        except KeyboardInterrupt:
            raise CommandError("interrupted; nothing was written", EXIT_INTERRUPTED) from None


@click.group(cls=CondorcofGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="condorcof")
@click.option("-v", "--verbose", count=True, help="Log more (-vv for debug).")
def cli(verbose: int) -> None:
    """Run coffea-style columnar analyses locally or on HTCondor through DAGMan."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )


@cli.command()
@click.argument("processor")
@click.argument("fileset", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("result.pkl"),
    show_default=True,
    help="Where to write the result.",
)
@click.option(
    "-j",
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Local worker processes [default: the number of CPUs].",
)
@click.option(
    "--job-events",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Pack chunks into tasks of about this many events (0: one chunk per task).",
)
@click.option("--quiet", is_flag=True, help="No progress line.")
@_plan_options
def run(
    processor: str,
    fileset: Path,
    output: Path,
    workers: int | None,
    job_events: int,
    quiet: bool,
    **plan_kw: Any,
) -> None:
    """Run PROCESSOR (file.py:Class or module:Class) over FILESET on this machine."""
    from condorcof.local import run_local
    from condorcof.progress import format_count, format_duration

    request, spec, schema, allow_incomplete = _request(processor, fileset, job_events, plan_kw)
    show = not quiet
    from condorcof.planning import plan_fileset

    started = time.perf_counter()
    _, plan = plan_fileset(request, show_progress=show)
    click.echo(
        f"planned {len(plan.chunks)} chunks in {len(plan.jobs)} tasks over "
        f"{len(plan.datasets)} datasets ({format_count(plan.total_events)} events) "
        f"in {time.perf_counter() - started:.1f} s",
        err=True,
    )
    summary = run_local(
        plan,
        spec,
        output,
        workers=workers or os.cpu_count() or 1,
        schema=schema,
        allow_incomplete=allow_incomplete,
        show_progress=show,
        redirectors=request.redirectors,
    )
    secs = summary.seconds
    click.echo(
        f"processed {summary.events} events in {format_duration(secs['process'])} "
        f"({format_count(summary.rate)} ev/s), merge {secs['merge']:.2f} s",
        err=True,
    )
    for skipped in summary.report.get("skipped_files", []):
        click.echo(
            f"skipped file: {skipped['path']} ({skipped['dataset']}): {skipped['reason']}", err=True
        )
    if not summary.report.get("complete", True):
        click.echo(
            "WARNING: the result is incomplete; see the report for the fraction per dataset",
            err=True,
        )
    click.echo(f"result written to {output}")


@cli.command()
@click.argument("processor")
@click.argument("fileset", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--site", default="local", show_default=True, help="Site profile name (site/*.toml) or file."
)
@click.option("--image", default=None, help="Container image for the jobs [default: the site's].")
@click.option("--name", default=None, help="Run name [default: <processor>-<date>-<time>].")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("condorcof-runs"),
    show_default=True,
    help="Folder that holds run directories.",
)
@click.option(
    "--job-events",
    type=click.IntRange(min=0),
    default=1_000_000,
    show_default=True,
    help="Pack chunks into jobs of about this many events.",
)
@click.option(
    "--memory", type=click.IntRange(min=1), default=None, help="request_memory of chunk jobs, MB."
)
@click.option(
    "--cpus", type=click.IntRange(min=1), default=None, help="request_cpus of chunk jobs."
)
@click.option("--disk", default=None, help="request_disk of jobs, like 2GB.")
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=None,
    help="Retries of a node after a transient failure.",
)
@click.option(
    "--max-idle", type=click.IntRange(min=1), default=None, help="DAGMan's limit on idle node jobs."
)
@click.option(
    "--input-files",
    "input_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Extra file shipped to every job (repeatable): correction tables, models.",
)
@click.option(
    "--schedd", "schedd_name", default=None, help="Submit to this schedd instead of the local one."
)
@click.option("--pool", default=None, help="Collector to locate --schedd with.")
@click.option(
    "--spool",
    is_flag=True,
    help="Carry every input into the schedd's spool (remote access points); fetch results with 'condorcof fetch'.",
)
@click.option("--dry-run", is_flag=True, help="Write the run directory; submit nothing.")
@click.option(
    "--probe", is_flag=True, help="First run the processor on a small slice in the jobs' image."
)
@_plan_options
def submit(
    processor: str,
    fileset: Path,
    site: str,
    image: str | None,
    name: str | None,
    workdir: Path,
    job_events: int,
    memory: int | None,
    cpus: int | None,
    disk: str | None,
    retries: int | None,
    max_idle: int | None,
    input_files: tuple[Path, ...],
    schedd_name: str | None,
    pool: str | None,
    spool: bool,
    dry_run: bool,
    probe: bool,
    **plan_kw: Any,
) -> None:
    """Plan PROCESSOR over FILESET and submit it as an HTCondor DAG; returns at once."""
    from condorcof.credentials import check_credentials
    from condorcof.planning import plan_fileset
    from condorcof.rundir import check_name, default_run_name, write_run
    from condorcof.sites import resolve_profile
    from condorcof.workflow import submit_run

    request, spec, schema, _ = _request(processor, fileset, job_events, plan_kw)
    overrides = dict(image=image, request_memory=memory, request_cpus=cpus, request_disk=disk,
                     retries=retries, max_idle=max_idle, schedd=schedd_name, pool=pool,
                     spool=True if spool else None, xrootd_redirectors=request.redirectors or None)  # fmt: skip
    profile = resolve_profile(site, overrides)
    request = replace(request, redirectors=profile.xrootd_redirectors)
    if not dry_run:  # an expired proxy is an error before anything is written
        for warning in check_credentials(profile):
            click.echo(f"warning: {warning}", err=True)
    run_name = check_name(name or default_run_name(spec))
    _, plan = plan_fileset(request, show_progress=True)
    if probe and not dry_run:  # before anything of the real run is written
        from condorcof.probe import run_probe

        click.echo("probing the processor on a small slice in the jobs' image first...", err=True)
        click.echo(
            run_probe(plan, spec, profile, workdir / f"{run_name}-probe").describe(), err=True
        )
    info = write_run(
        workdir / run_name, run_name, plan, spec, profile, schema, input_files, spool=profile.spool
    )
    click.echo(
        f"run {run_name}: {len(plan.chunks)} chunks in {len(plan.jobs)} jobs, "
        f"{len(plan.merges)} merges, {plan.total_events} events -> {info.directory}"
    )
    if dry_run:
        click.echo(
            f"dry run: nothing submitted; to submit by hand: cd {info.directory} && "
            "condor_submit_dag workflow.dag"
        )
        return
    info = submit_run(info, profile.max_idle, profile.schedd, profile.pool)
    click.echo(f"submitted: DAGMan job {info.cluster}")
    click.echo(f"follow it with: condorcof status {info.directory}")


def _run_argument(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--workdir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Folder of run directories, to find RUN by name.",
    )(func)
    return click.argument("run")(func)


def _find(run: str, workdir: Path | None) -> Any:
    from condorcof.rundir import find_run

    return find_run(run, workdir)


@cli.command()
@_run_argument
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-schedd", is_flag=True, help="Read the run directory only.")
def status(run: str, workdir: Path | None, as_json: bool, no_schedd: bool) -> None:
    """Show the state of RUN (a run directory or name)."""
    import json

    from condorcof.status import collect_status, format_status

    state = collect_status(_find(run, workdir), query_schedd=not no_schedd)
    click.echo(json.dumps(state.to_json(), indent=1) if as_json else format_status(state))


@cli.command()
@_run_argument
@click.option("--interval", type=click.FloatRange(min=0.5), default=5.0, show_default=True)
@click.option(
    "--timeout", type=click.FloatRange(min=0), default=None, help="Give up after this many seconds."
)
def watch(run: str, workdir: Path | None, interval: float, timeout: float | None) -> None:
    """Redraw the status of RUN until its DAG ends; exits non-zero unless it succeeded."""

    from condorcof.status import collect_status, format_status

    info = _find(run, workdir)
    start = time.monotonic()
    tty = click.get_text_stream("stdout").isatty()
    while True:
        state = collect_status(info)
        text = format_status(state)
        click.echo(("\x1b[2J\x1b[H" if tty else "") + text)
        if state.state not in ("running", "unknown (schedd unreachable)"):
            break
        if timeout is not None and time.monotonic() - start > timeout:
            raise CommandError(f"run {info.name} still running after {timeout:.0f} s", 2)
        time.sleep(interval)
    if state.state != "done":
        raise CommandError(f"run {info.name} ended {state.state}", 1)
    click.echo(f"result: {state.result}")


@cli.command(name="list")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("condorcof-runs"),
    show_default=True,
)
@click.option("--no-schedd", is_flag=True, help="Read the run directories only.")
def list_runs(workdir: Path, no_schedd: bool) -> None:
    """List the runs under WORKDIR with their state."""
    from condorcof.rundir import RUN_FILE, load_run_info
    from condorcof.status import collect_status

    runs = sorted(p.parent for p in workdir.glob(f"*/{RUN_FILE}")) if workdir.is_dir() else []
    if not runs:
        click.echo(f"no runs in {workdir}")
    for path in runs:
        info = load_run_info(path)
        state = collect_status(info, query_schedd=not no_schedd)
        click.echo(
            f"{info.name:40} {state.state:12} {state.events_processed}/{state.events_planned} events"
            f"  job {info.cluster}"
        )


@cli.command()
@_run_argument
def remove(run: str, workdir: Path | None) -> None:
    """Remove RUN's DAG from the queue (DAGMan writes a rescue DAG for resubmit)."""
    from condorcof.schedd import get_schedd, query_job, remove_dag

    info = _find(run, workdir)
    schedd = get_schedd(info.schedd, info.pool)
    if info.cluster is None or query_job(schedd, info.cluster, ["ClusterId"]) is None:
        raise CommandError(f"run {info.name} has no DAG in the queue", 1)
    remove_dag(schedd, info.cluster, f"condorcof remove {info.name}")
    click.echo(
        f"removed DAGMan job {info.cluster}; resume later with: condorcof resubmit {info.directory}"
    )


@cli.command()
@_run_argument
@click.option(
    "--memory",
    type=click.IntRange(min=1),
    default=None,
    help="Give the held jobs this much memory, MB.",
)
def release(run: str, workdir: Path | None, memory: int | None) -> None:
    """Release RUN's held node jobs, optionally with more memory."""
    from condorcof.schedd import get_schedd, release_held

    info = _find(run, workdir)
    if info.cluster is None:
        raise CommandError(f"run {info.name} was never submitted", 1)
    released = release_held(get_schedd(info.schedd, info.pool), info.cluster, memory)
    click.echo(f"released {len(released)} held job(s): {', '.join(released) or '-'}")


@cli.command()
@_run_argument
@click.option(
    "--memory",
    type=click.IntRange(min=1),
    default=None,
    help="request_memory of the rerun chunk jobs, MB.",
)
@click.option(
    "--retries", type=click.IntRange(min=0), default=None, help="Retries of the rerun nodes."
)
@click.option(
    "--keep-code", is_flag=True, help="Reuse the bundle as submitted, not the current code."
)
@click.option(
    "--skip-bad-files",
    is_flag=True,
    help="Leave out the input files that made jobs fail (they are listed in the result).",
)
def resubmit(
    run: str,
    workdir: Path | None,
    memory: int | None,
    retries: int | None,
    keep_code: bool,
    skip_bad_files: bool,
) -> None:
    """Rerun only the failed and unrun nodes of RUN, through DAGMan's rescue DAG.

    The processor's folder is shipped again as it is now (so a fixed bug stays fixed), unless
    --keep-code is given.
    """
    from condorcof.workflow import resubmit_run

    info, failed, skipped = resubmit_run(
        _find(run, workdir),
        memory=memory,
        retries=retries,
        refresh_code=not keep_code,
        skip_files=skip_bad_files,
    )
    for path in skipped:
        click.echo(f"leaving out {path} (it made its job fail); the result will list it")
    click.echo(
        f"resubmitted run {info.name} as DAGMan job {info.cluster}; rerunning {len(failed)} failed "
        f"node(s) ({', '.join(failed[:10])}{'...' if len(failed) > 10 else ''}) and the nodes after them"
    )
    click.echo(f"follow it with: condorcof status {info.directory}")


@cli.command()
@_run_argument
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the merged partial result.",
)
def peek(run: str, workdir: Path | None, output: Path) -> None:
    """Merge the partials RUN has returned so far (the DAG is not disturbed)."""
    from condorcof.peek import peek_run

    report = peek_run(_find(run, workdir), output)
    for ds, counts in report["datasets"].items():
        click.echo(
            f"{ds:30} {counts['events_processed']}/{counts['events_planned']} events "
            f"({counts['fraction']:.0%})"
        )
    click.echo(
        f"partial result ({report['events_processed']}/{report['events_planned']} events) written to {output}"
    )


@cli.command()
@_run_argument
def fetch(run: str, workdir: Path | None) -> None:
    """Bring a spooled RUN's outputs and logs back from the schedd."""
    from condorcof.rundir import load_run_info
    from condorcof.workflow import fetch_run

    info = _find(run, workdir)
    fetch_run(info)
    result = load_run_info(info.path).result
    click.echo(f"fetched run {info.name} into {info.directory}")
    click.echo(
        f"result: {result}"
        if result.exists()
        else f"no result: see condorcof status {info.directory}"
    )


@cli.command()
@click.argument("name", required=False)
def sites(name: str | None) -> None:
    """List the site profiles, or show profile NAME as it would apply (with your config)."""
    from condorcof.sites import available_profiles, describe_profile, load_profile, resolve_profile

    if name is None:
        for profile_name in available_profiles():
            click.echo(f"{profile_name:14} {load_profile(profile_name).description}")
        click.echo("show one with: condorcof sites NAME")
        return
    try:
        profile = resolve_profile(name)
    except CondorcofError:  # e.g. placeholders still to fill: show the shipped profile anyway
        profile = load_profile(name)
    click.echo(describe_profile(profile))


@cli.command()
@click.argument("processor")
@click.argument("fileset", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--site", default="local", show_default=True, help="Site profile name or file.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("condorcof-runs"),
    show_default=True,
)
@click.option(
    "--events",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Events in the probe's slice.",
)
@_plan_options
def probe(
    processor: str, fileset: Path, site: str, workdir: Path, events: int, **plan_kw: Any
) -> None:
    """Run PROCESSOR on a small slice of FILESET as one job in the site's image; suggest settings."""

    from condorcof.planning import plan_fileset
    from condorcof.probe import run_probe
    from condorcof.rundir import default_run_name
    from condorcof.sites import resolve_profile

    request, spec, _, _ = _request(processor, fileset, 0, plan_kw)
    profile = resolve_profile(site)
    _, plan = plan_fileset(request)
    name = f"probe-{default_run_name(spec)}-{int(time.time()) % 1000}"
    click.echo(run_probe(plan, spec, profile, workdir / name, events).describe())


def _request(
    processor: str, fileset: Path, job_events: int, kw: dict[str, Any]
) -> tuple[Any, Any, str, bool]:
    """Turn shared CLI options into a plan request and a processor spec."""
    from condorcof.plan import PlanOptions
    from condorcof.planning import PlanRequest
    from condorcof.processor import parse_processor_spec

    spec = parse_processor_spec(processor, kw["processor_args"])
    options = PlanOptions(
        chunksize=kw["chunksize"],
        max_chunks=kw["max_chunks"],
        job_events=job_events,
        merge_fanin=kw["merge_fanin"],
    )
    request = PlanRequest(
        fileset=fileset,
        options=options,
        treename=kw["treename"],
        skip_bad_files=kw["skip_bad_files"],
        use_cache=not kw["no_cache"],
        redirectors=tuple(kw["redirectors"]),
    )
    return request, spec, kw["schema"], kw["allow_incomplete"]


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    cli.main(args=argv, prog_name="condorcof")
