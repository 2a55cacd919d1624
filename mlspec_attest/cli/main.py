"""Entry point: a lazily-loaded click group and the one place errors become exit codes."""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
import traceback
from functools import cache
from types import ModuleType
from typing import Any

import click

from mlspec_attest._version import __version__
from mlspec_attest.cli.names import CLI_NAMES
from mlspec_attest.errors import ExitCode, MlspecError
from mlspec_attest.formats.inputs import front_end_names
from mlspec_attest.formats.printable import printable_lines

ERROR_SCHEMA = "https://mlspec-attest.dev/error/v1"

# command name -> (module, one-line help); each module's click command is named after
# the command. Modules load only when used, so `mlspec-attest --help` never imports
# cryptography, rich or the verifier.
_TABLE: dict[str, tuple[str, str]] = {
    "keygen": ("keygen", "Create a signing key pair (NAME.key, NAME.pub)."),
    "sign": ("sign", "Record and sign one pipeline stage (optionally running its command)."),
    "policy": ("policy", "Write, lint, show and sign policies."),
    "verify": ("verify", "Verify a pipeline run against a signed policy before deploy."),
    "inspect": ("inspect", "Show an attestation, bundle or policy without trusting it."),
    "digest": ("digest", "Print the digest `sign` records for a file or directory."),
    "tune": ("tune_cmd", "Measure how this machine reads large files fastest (digest speed)."),
    "stages": ("stages_cmd", "List the lifecycle stage kinds and what each records."),
    "objectives": ("objectives_cmd", "Write, lint and check codified launch objectives."),
    "metrics": ("metrics_cmd", "Compute metrics documents from predictions (sign --metrics)."),
    "analyze": ("data_cmd", "Statistics per feature and slice; outliers (analyze stage)."),
    "schema": ("data_cmd", "Infer a first versioned data schema from the leading rows."),
    "validate": ("data_cmd", "Validate data against a versioned data schema."),
    "leakage": ("leakage_cmd", "Row-level overlap between data splits (leakage check)."),
    "model": ("model_cmd", "Verify and sign OpenSSF model-signing signatures."),
    "bundle": ("bundle_cmd", "Verify any Sigstore bundle offline (keyless or key)."),
    "export": (
        "export_cmd",
        "Export a verified run for other tools (in-toto layout + links, .intoto.jsonl).",
    ),
    "gate": ("gate_cmd", "Open a model only if a signed verification summary covers its bytes."),
    "serve": (
        "serve_cmd",
        "Serve a gated model over HTTP (Open Inference Protocol, /ok /varz /metrics).",
    ),
    "log": ("log_cmd", "Verify, prove and trace the tamper-evident inference log."),
    "monitor": (
        "monitor_cmd",
        "Drift and live metrics over a window of the verified inference log.",
    ),
    "rollback": (
        "rollback_cmd",
        "Switch serving to an earlier model whose summary still passes the gate.",
    ),
    "store": ("store_cmd", "Rebuild the attestation store's query index (store reindex)."),
    "query": ("query_cmd", "Ask the store: runs, lineage, signers, differences between runs."),
}
# command name -> (module, attribute, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    name: (module, name, text) for name, (module, text) in _TABLE.items()
}


HELP_OPTION_NAMES = ["-h", "--help"]


def _short_help_everywhere(command: click.Command) -> None:
    """``-h`` on every command, however it is reached.

    A context inherits help names from its parent, but click caches each command's
    help option on first use: a command first invoked on its own (an embedding
    program, a test) would keep ``--help`` alone. Setting the names on the command
    itself makes both paths agree.
    """
    command.context_settings.setdefault("help_option_names", HELP_OPTION_NAMES)
    cached = command._help_option
    if cached is not None and "-h" not in cached.opts:
        command._help_option = None  # rebuilt with both names on next use
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _short_help_everywhere(sub)


def _import_quietly(name: str) -> ModuleType:
    """Import a command's module with the cyclic garbage collector paused, then freeze
    what start-up made (once per process).

    Start-up creates a few hundred thousand objects that live as long as the process
    (modules, classes, functions); collections while they are made, and full collections
    that walk them afterwards, only cost time: about 10 % of a ``verify`` (docs/benchmarks.md).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return importlib.import_module(name)
    finally:
        if enabled:
            gc.enable()
        _freeze_start_up()


@cache
def _freeze_start_up() -> None:
    gc.freeze()  # once: later cyclic garbage stays collectable


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = _import_quietly(f"{__package__}.{spec[0]}")
        command = getattr(module, spec[1])
        assert isinstance(command, click.Command)
        _short_help_everywhere(command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, spec[2]) for name, spec in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": HELP_OPTION_NAMES})
@click.version_option(__version__, prog_name="mlspec-attest")
def cli() -> None:
    """Sign every stage of an ML pipeline and verify the whole chain before deploy.

    \b
    Exit codes: 0 passed · 1 denied · 2 usage · 3 bad input
                4 backend/trust unavailable · 70 internal error
    Environment: MLSPEC_ATTEST_STORE (store directory), MLSPEC_ATTEST_KEY (signing key),
                 MLSPEC_RUN_ID (run id shared by all stages of one run).
    """
    # Every message of the run names the CLI's flags (:mod:`.names`), not parameters; here,
    # not in main(), so an embedding program or CliRunner gets them too.
    click.get_current_context().with_resource(front_end_names(CLI_NAMES))


def _wants_json(argv: list[str]) -> bool:
    head = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in head


KINDS = {
    ExitCode.DENIED: "denied",
    ExitCode.USAGE: "usage",
    ExitCode.BAD_INPUT: "bad-input",
    ExitCode.BACKEND: "backend",
    ExitCode.INTERNAL: "internal",
}


def emit_error(
    code: int,
    error_type: str,
    message: str,
    remedy: str | None,
    as_json: bool,
    *,
    kind: str | None = None,
) -> None:
    """Report an error: text on stderr, and with --json one error document on stdout."""
    if as_json:
        if kind is None:
            known = code in ExitCode._value2member_map_
            kind = KINDS.get(ExitCode(code), "denied") if known else "denied"
        doc: dict[str, Any] = {
            "schemaVersion": ERROR_SCHEMA,
            "result": "ERROR",
            "exitCode": int(code),
            "error": {"kind": kind, "type": error_type, "message": message, "remedy": remedy or ""},
        }
        click.echo(json.dumps(doc, indent=2))
    text = f"error: {message}"
    if remedy:
        text += f"\n  fix: {remedy}"
    # Messages quote paths and names from the files read, and are several lines by design
    # (a problem a line): each line is made printable, so their ESC, CR, bidi override or
    # line separator is shown escaped. A newline inside a quoted name (not quoted with !r)
    # still ends a line there; the JSON document above keeps the message as it is.
    click.echo(printable_lines(text.split("\n")), err=True)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = _wants_json(args)
    try:
        rv = cli.main(args=args, prog_name="mlspec-attest", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        sys.exit(ExitCode.USAGE)
    except click.UsageError as exc:
        emit_error(ExitCode.USAGE, "UsageError", exc.format_message(), "see --help", as_json)
        sys.exit(ExitCode.USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(ExitCode.USAGE)
    except click.ClickException as exc:
        emit_error(ExitCode.BAD_INPUT, "BadInputError", exc.format_message(), None, as_json)
        sys.exit(ExitCode.BAD_INPUT)
    except MlspecError as exc:
        message = exc.diagnostics() if getattr(exc, "problems", None) else exc.message
        code: int = exc.exit_code
        kind = KINDS.get(exc.exit_code, "denied")
        returncode = getattr(exc, "returncode", None)
        if isinstance(returncode, int) and returncode != 0:
            # A failed stage command: propagate its status (a signal N becomes 128+N).
            code = returncode if returncode > 0 else 128 - returncode
            kind = "command-failed"
        emit_error(code, type(exc).__name__, message, exc.remedy, as_json, kind=kind)
        sys.exit(code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        emit_error(
            ExitCode.INTERNAL,
            "InternalError",
            f"internal error: {type(exc).__name__}: {exc}",
            "this is a bug in mlspec-attest; rerun with MLSPEC_ATTEST_DEBUG=1 and report the traceback",
            as_json,
        )
        if os.environ.get("MLSPEC_ATTEST_DEBUG"):
            traceback.print_exc()
        sys.exit(ExitCode.INTERNAL)
    sys.exit(int(rv) if isinstance(rv, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
