"""Mutation testing of the security-critical modules: ``make mutate``.

Runs mutmut 3 (pinned in the ``dev`` extra) over the given modules and prints,
per module, how many mutants there were, how many the tests killed, and which
survived. A survivor is acceptable only when docs/testing.md explains it (its
mutant name appears in the "Mutation testing" section); the run exits 1 when a
module kills fewer than ``--min-kill-rate`` percent, or a survivor is
unexplained.

Each module runs in its own workspace, ``mutants/<module>/`` (git-ignored): links
to the tree, and mutmut's copy of the package and tests with the mutants in it.
mutmut first runs the module's test selection (``SELECTIONS``, below) once with
call tracing to learn which tests reach which function (cached there), then runs,
for each mutant, only the tests that reach its function. Later runs reuse the
cache: only functions whose source changed, and tests that are new, run again;
``--fresh`` starts over.

mutmut 3 reads its settings from ``[tool.mutmut]`` in pyproject.toml or from
setup.cfg; this script gives them instead (``settings``, below, through mutmut's
config reader, hence the exact pin), so that the module list can come from the
command line: ``make mutate MODULES="mlspec_attest/formats/dsse.py ..."``.

Usage::

    python tools/mutate.py [--fresh] [--report-only] [--max-children N]
                           [--min-kill-rate PCT] [--mutant GLOB] [MODULE ...]
    python tools/mutate.py --show MUTANT_NAME MODULE     # the mutant's diff
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "mlspec_attest"
DOC = ROOT / "docs" / "testing.md"

# The security-critical modules (issue 10, item 9).
DEFAULT_MODULES = (
    "mlspec_attest/policy/rules.py",
    "mlspec_attest/policy/signed.py",
    "mlspec_attest/signing/keys.py",
    "mlspec_attest/signing/sigstore/verify.py",
    "mlspec_attest/signing/sigstore/_compat.py",
    "mlspec_attest/signing/sigstore/identity.py",
    "mlspec_attest/signing/sigstore/key_bundle.py",
    "mlspec_attest/signing/sigstore/trust_root.py",
    "mlspec_attest/signing/sigstore/log_entry.py",
    "mlspec_attest/signing/schemes.py",
    "mlspec_attest/signing/certificates.py",
    "mlspec_attest/interop/oms/trust.py",
    "mlspec_attest/interop/oms/signature_check.py",
    "mlspec_attest/formats/dsse.py",
    "mlspec_attest/formats/bundle.py",
    "mlspec_attest/store/ledger.py",
    "mlspec_attest/verify/accepted.py",
    "mlspec_attest/verify/dirfiles.py",
    "mlspec_attest/verify/pipeline.py",
    "mlspec_attest/verify/signers.py",
    "mlspec_attest/verify/admission.py",
    "mlspec_attest/verify/signed_times.py",
    "mlspec_attest/verify/agreement.py",
    "mlspec_attest/verify/ordering.py",
    "mlspec_attest/verify/artifact_rules.py",
    "mlspec_attest/verify/baseline.py",
    "mlspec_attest/verify/artifacts.py",
    "mlspec_attest/verify/checks/objectives.py",
    "mlspec_attest/verify/checks/separation.py",
    "mlspec_attest/verify/checks/holdback.py",
    "mlspec_attest/verify/checks/leakage.py",
    "mlspec_attest/verify/checks/validation.py",
    "mlspec_attest/verify/checks/requirements.py",
    "mlspec_attest/verify/checks/records.py",
    "mlspec_attest/verify/checks/digests.py",
    "mlspec_attest/verify/ledger.py",
    "mlspec_attest/verify/draft.py",
    "mlspec_attest/policy/criteria.py",
    "mlspec_attest/policy/requirements.py",
    "mlspec_attest/log/process.py",
)

# Which tests mutmut may run for a module: every test that can reach its code (mutmut
# then runs, per mutant, only those that do). Each module gets its own workspace
# (mutants/<module>/), so selections and cached results do not interfere. The
# fuzzing targets are left out: random inputs would make kills irreproducible.
FULL_SUITE = ["tests", "--ignore=tests/fuzz"]
_VERIFY_TESTS = [
    "tests/test_verify.py",
    "tests/test_tamper_matrix.py",
    "tests/test_verdict_order.py",
    "tests/test_templates.py",
    "tests/cli/test_verify.py",
]
SELECTIONS: dict[str, list[str]] = {
    "mlspec_attest/signing/sigstore/identity.py": ["tests/sigstore"],
    "mlspec_attest/signing/sigstore/key_bundle.py": ["tests/sigstore"],
    "mlspec_attest/signing/sigstore/trust_root.py": ["tests/sigstore"],
    "mlspec_attest/signing/sigstore/log_entry.py": ["tests/sigstore"],
    "mlspec_attest/signing/schemes.py": [
        "tests/test_schemes.py",
        "tests/test_schemes_exact.py",
        "tests/test_keys.py",
        "tests/interop/test_oms_trust.py",
    ],
    "mlspec_attest/signing/certificates.py": [
        "tests/interop/test_oms_trust.py",
        "tests/test_certificates_exact.py",
    ],
    "mlspec_attest/interop/oms/signature_check.py": [
        "tests/interop",
        "tests/sigstore/test_conformance_oms.py",
    ],
    "mlspec_attest/policy/rules.py": [
        "tests/test_rules_exact.py",
        "tests/test_rules.py",
        *_VERIFY_TESTS,
        "tests/interop/test_intoto.py",
    ],
    "mlspec_attest/policy/signed.py": [
        "tests/test_signed_policy.py",
        *_VERIFY_TESTS,
        "tests/test_golden.py",
        "tests/cli/test_policy.py",
        "tests/sigstore/test_policy_sigstore.py",
    ],
    "mlspec_attest/signing/keys.py": [
        "tests/test_keys.py",
        "tests/test_dsse.py",
        "tests/test_bundle.py",
        "tests/test_golden.py",
        "tests/cli/test_keygen.py",
        "tests/cli/test_sign.py",
        "tests/sigstore/test_bundles.py",
        "tests/sigstore/test_key_transparency.py",
        "tests/interop/test_oms.py",
        *_VERIFY_TESTS,
    ],
    "mlspec_attest/signing/sigstore/verify.py": ["tests/sigstore"],
    "mlspec_attest/signing/sigstore/_compat.py": ["tests/sigstore"],
    "mlspec_attest/interop/oms/trust.py": ["tests/interop", "tests/cli/test_sign.py"],
    "mlspec_attest/formats/dsse.py": [
        "tests/test_dsse_exact.py",
        "tests/test_dsse.py",
        "tests/test_bundle.py",
        "tests/test_golden.py",
        "tests/test_statement.py",
        "tests/sigstore/test_bundles.py",
        "tests/sigstore/test_verify_reasons.py",
        *_VERIFY_TESTS,
    ],
    "mlspec_attest/formats/bundle.py": [
        "tests/test_bundle.py",
        "tests/test_dsse.py",
        "tests/test_golden.py",
        "tests/test_store.py",
        "tests/interop/test_oms.py",
        "tests/interop/test_oms_trust.py",
        "tests/sigstore/test_keyless.py",
        *_VERIFY_TESTS,
    ],
    "mlspec_attest/store/ledger.py": [
        "tests/test_store_ledger.py",
        "tests/test_store.py",
        "tests/test_attestation.py",
        "tests/test_api.py",
        "tests/test_golden.py",
        "tests/cli/test_sign.py",
        *_VERIFY_TESTS,
    ],
    "mlspec_attest/verify/accepted.py": [
        "tests/test_accepted.py",
        *_VERIFY_TESTS,
        "tests/test_verify_boundaries.py",
        "tests/test_mlchecks.py",
        "tests/test_objectives.py",
        "tests/interop/test_intoto_export.py",
    ],
    "mlspec_attest/verify/dirfiles.py": [
        *_VERIFY_TESTS,
        "tests/test_verify_boundaries.py",
        "tests/test_digest.py",
    ],
    "mlspec_attest/verify/pipeline.py": [
        "tests/test_verify_failures_pipeline.py",
        "tests/test_verify_failures_rules.py",
        *_VERIFY_TESTS,
        "tests/test_verify_boundaries.py",
        "tests/test_mlchecks.py",
        "tests/test_golden.py",
        "tests/interop/test_intoto_export.py",
    ],
    "mlspec_attest/verify/signers.py": [
        "tests/test_verify_failures_signers.py",
        "tests/test_verify_failures_admission.py",
        "tests/test_verify_signers.py",
        *_VERIFY_TESTS,
        "tests/test_mlchecks.py",
        "tests/adversarial/test_envelope.py",
        "tests/adversarial/test_keys.py",
        "tests/sigstore/test_keyless.py",
    ],
    "mlspec_attest/verify/admission.py": [
        "tests/test_verify_failures_admission.py",
        "tests/test_verify_failures_signers.py",
        "tests/test_verify_signers.py",
        *_VERIFY_TESTS,
        "tests/test_signed_time.py",
        "tests/adversarial/test_envelope.py",
        "tests/adversarial/test_replay.py",
        "tests/sigstore/test_keyless.py",
    ],
    "mlspec_attest/verify/signed_times.py": [
        "tests/test_verify_steps.py",
        "tests/test_verify_failures_signers.py",
        "tests/test_signed_time.py",
        *_VERIFY_TESTS,
        "tests/sigstore/test_keyless.py",
    ],
    "mlspec_attest/verify/agreement.py": [
        "tests/test_verify_steps.py",
        "tests/test_accepted.py",
        *_VERIFY_TESTS,
    ],
    "mlspec_attest/verify/ordering.py": [
        "tests/test_verify_steps.py",
        "tests/test_signed_time.py",
        *_VERIFY_TESTS,
    ],
    "mlspec_attest/verify/artifact_rules.py": [
        "tests/test_verify_failures_rules.py",
        *_VERIFY_TESTS,
        "tests/test_verify_boundaries.py",
        "tests/adversarial/test_paths.py",
    ],
    "mlspec_attest/verify/baseline.py": [
        "tests/test_verify_failures_baseline.py",
        "tests/test_verify_signers.py",
        "tests/test_mlchecks.py",
        "tests/test_mlchecks_failures.py",
        "tests/cli/test_verify.py",
    ],
    "mlspec_attest/verify/artifacts.py": [
        "tests/test_verify_failures_artifacts.py",
        *_VERIFY_TESTS,
        "tests/test_verify_boundaries.py",
        "tests/test_digest_engine.py",
        "tests/interop/test_oms_evidence.py",
    ],
    "mlspec_attest/policy/criteria.py": [
        "tests/test_criteria_exact.py",
        "tests/test_objectives.py",
        "tests/test_requirements_typed.py",
        "tests/test_checks_objectives_exact.py",
        "tests/test_mlchecks.py",
    ],
    "mlspec_attest/policy/requirements.py": [
        "tests/test_requirements_typed.py",
        "tests/test_policy_show.py",
        "tests/test_mlchecks.py",
    ],
    "mlspec_attest/verify/ledger.py": [
        "tests/test_verify_ledger.py",
        "tests/test_verify_failures_artifacts.py",
        "tests/cli/test_verify.py",
    ],
    "mlspec_attest/verify/draft.py": ["tests/cli/test_policy_test.py"],
    "mlspec_attest/log/process.py": ["tests/log/test_process.py", "tests/serve/test_real_log.py"],
    "mlspec_attest/verify/checks/objectives.py": [
        "tests/test_mlchecks.py",
        "tests/test_mlchecks_failures.py",
        "tests/test_verify_signers.py",
        "tests/test_checks_objectives_exact.py",
    ],
    "mlspec_attest/verify/checks/separation.py": [
        "tests/test_mlchecks.py",
        "tests/test_mlchecks_failures.py",
        "tests/test_checks_separation_exact.py",
    ],
    "mlspec_attest/verify/checks/holdback.py": [
        "tests/test_holdback_content.py",
        "tests/test_checks_holdback_exact.py",
        "tests/test_mlchecks.py",
        "tests/test_mlchecks_failures.py",
    ],
    "mlspec_attest/verify/checks/leakage.py": [
        "tests/test_mlchecks.py",
        "tests/test_mlchecks_failures.py",
        "tests/test_holdback_content.py",
        "tests/test_checks_leakage_exact.py",
    ],
    "mlspec_attest/verify/checks/validation.py": [
        "tests/test_mlchecks.py",
        "tests/test_verify_checks_small.py",
        "tests/test_checks_validation_exact.py",
    ],
    "mlspec_attest/verify/checks/requirements.py": [
        "tests/test_mlchecks.py",
        "tests/test_verify_checks_small.py",
    ],
    "mlspec_attest/verify/checks/records.py": [
        "tests/test_mlchecks.py",
        "tests/test_verify_checks_small.py",
    ],
    "mlspec_attest/verify/checks/digests.py": [
        "tests/test_mlchecks.py",
        "tests/test_holdback_content.py",
        "tests/test_verify_checks_small.py",
    ],
}
# Given to every pytest run mutmut makes.
PYTEST_ARGS = ["-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"]
# What a workspace links to: the tree, but for what is not source (the tests read some
# of the rest: policies, schemas, examples, the Makefile, .ci, ...).
NOT_LINKED = {".git", ".venv", ".hypothesis", "mutants", "build", "dist", ".mlspec"}


def workspace_links() -> list[str]:
    return sorted(
        p.name
        for p in ROOT.iterdir()
        if p.name not in NOT_LINKED and not p.name.endswith(("_cache", ".egg-info"))
    )


KILLED = {"killed", "timeout", "caught by type check"}
MUTANT_NAME = re.compile(rf"{PACKAGE}\.[\w.ǁ]+__mutmut_\d+")


def settings(modules: list[str]) -> dict[str, Any]:
    return {
        "source_paths": [PACKAGE],
        "only_mutate": modules,
        "also_copy": [
            p for p in workspace_links() if p not in (PACKAGE, "tests", "pyproject.toml")
        ],
        "pytest_add_cli_args_test_selection": SELECTIONS.get(modules[0], FULL_SUITE),
        "pytest_add_cli_args": PYTEST_ARGS,
        # A mutant that runs 15x its tests' clean time (plus 5 s) is a timeout (killed).
        "timeout_constant": 5.0,
        # The change detection re-runs everything when any tracked file changes; on a
        # tree many people edit at once that is every run. Functions are re-hashed
        # anyway, so only source changes matter.
        "on_dependency_change": "ignore",
    }


def install_settings(modules: list[str]) -> None:
    """Make mutmut read ``settings(modules)`` instead of pyproject.toml/setup.cfg."""
    from mutmut import configuration

    values = settings(modules)

    def reader() -> Any:
        def get(key: str, default: Any) -> Any:
            return values.get(key, default)

        return get

    configuration._config_reader = reader
    configuration.reset_config()


def workspace(module: str) -> Path:
    """mutants/<module>/: where mutmut runs for ``module`` (it writes its own mutants/ there)."""
    name = module.removeprefix(PACKAGE + "/").removesuffix(".py").replace("/", ".")
    return ROOT / "mutants" / name


def prepare_workspace(module: str, fresh: bool) -> Path:
    """Link the tree into the workspace; drop copies mutmut would not refresh itself.

    mutmut copies tests/ over its old copy (a deleted or moved test would linger) and
    the package's data files only once: remove both so they are copied anew.
    """
    ws = workspace(module)
    if fresh:
        shutil.rmtree(ws, ignore_errors=True)
    ws.mkdir(parents=True, exist_ok=True)
    for name in workspace_links():
        link = ws / name
        if not link.is_symlink() and (ROOT / name).exists():
            link.symlink_to(ROOT / name)
    copy = ws / "mutants"
    shutil.rmtree(copy / "tests", ignore_errors=True)
    if (copy / PACKAGE).is_dir():
        for path in (copy / PACKAGE).rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".meta", ".spans"):
                path.unlink()
    return ws


def run_module(module: str, max_children: int, mutants: list[str]) -> int:
    """Run mutmut for one module, in its workspace (called in a child process)."""
    os.chdir(workspace(module))
    install_settings([module])
    from mutmut.__main__ import cli

    try:
        cli.main(
            ["run", "--max-children", str(max_children), *mutants],
            prog_name="mutmut",
            standalone_mode=False,
        )
    except SystemExit as exc:
        if exc.code not in (0, None):
            return 2
    return 0


def show(module: str, names: list[str]) -> int:
    """Print the diff of each named mutant (``mutmut show``)."""
    os.chdir(workspace(module))
    install_settings([module])
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    for name in names:
        print(f"# {name}")
        print(get_diff_for_mutant(name, path=module))
    return 0


def explained_survivors() -> set[str]:
    """Mutant names listed in the "Mutation testing" section of docs/testing.md."""
    if not DOC.exists():
        return set()
    text = DOC.read_text(encoding="utf-8")
    head = re.search(r"^(#{1,6}) Mutation testing[ \t]*$", text, re.MULTILINE)
    if head is None:
        return set()
    level = len(head.group(1))
    section = text[head.end() :]
    end = re.search(rf"^#{{1,{level}}} ", section, re.MULTILINE)
    if end:
        section = section[: end.start()]
    return set(MUTANT_NAME.findall(section))


def module_results(module: str) -> dict[str, str]:
    """mutant name -> status, from the module's workspace (empty if never run)."""
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code

    ws = workspace(module)
    if not ws.is_dir():
        return {}
    cwd = Path.cwd()
    os.chdir(ws)
    try:
        data = SourceFileMutationData(path=module)
        data.load()
    finally:
        os.chdir(cwd)
    return {name: status_by_exit_code[code] for name, code in sorted(data.exit_code_by_key.items())}


def report(modules: list[str], min_kill_rate: float) -> int:
    explained = explained_survivors()
    failed = False
    print()
    print(f"{'module':<44} {'mutants':>7} {'killed':>7} {'survived':>8} {'unrun':>6} {'rate':>7}")
    survivors: list[tuple[str, str, str]] = []
    for module in modules:
        results = module_results(module)
        total = len(results)
        killed = sum(1 for status in results.values() if status in KILLED)
        unrun = sum(1 for status in results.values() if status == "not checked")
        lost = [(module, n, st) for n, st in results.items() if st not in KILLED | {"not checked"}]
        survivors += lost
        rate = 100.0 * killed / total if total else 0.0
        ok = bool(total) and not unrun and rate >= min_kill_rate
        ok = ok and all(n in explained for _, n, _ in lost)
        failed |= not ok
        mark = "" if ok else "  <-- not done: below target, unrun or unexplained survivors"
        print(f"{module:<44} {total:>7} {killed:>7} {len(lost):>8} {unrun:>6} {rate:>6.1f}%{mark}")
    if survivors:
        print()
        print("Survivors (E: explained in docs/testing.md; --show NAME prints the diff):")
        for _module, name, status in survivors:
            print(f"  {'E' if name in explained else '!'} {name}  [{status}]")
    print()
    print(f"target: >= {min_kill_rate:g}% killed per module, every survivor explained")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("modules", nargs="*", help="source files (default: the security set)")
    parser.add_argument("--fresh", action="store_true", help="discard cached results first")
    parser.add_argument("--report-only", action="store_true", help="print the last results")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--min-kill-rate", type=float, default=95.0)
    parser.add_argument(
        "--mutant", action="append", default=[], help="(re)run only mutants matching this glob"
    )
    parser.add_argument(
        "--rerun-survivors",
        action="store_true",
        help="test the last run's survivors again (after adding tests)",
    )
    parser.add_argument("--show", action="append", default=[], help="print a mutant's diff")
    parser.add_argument("--in-workspace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    modules = [m.removeprefix("./") for m in args.modules] or list(DEFAULT_MODULES)
    for module in modules:
        if not module.startswith(PACKAGE + "/") or not (ROOT / module).is_file():
            parser.error(f"{module}: not a source file of {PACKAGE}/")

    if args.show:
        return show(modules[0], args.show)
    if args.in_workspace:
        return run_module(modules[0], args.max_children, args.mutant)
    if not args.report_only:
        for module in modules:
            globs = list(args.mutant)
            if args.rerun_survivors:
                lost = [n for n, st in module_results(module).items() if st not in KILLED]
                if not lost:
                    continue
                globs += lost
            print(f"=== {module}", flush=True)
            prepare_workspace(module, args.fresh)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--in-workspace"]
            cmd += ["--max-children", str(args.max_children), module]
            for glob in globs:
                cmd += ["--mutant", glob]
            code = subprocess.call(cmd)
            if code:
                print(f"mutmut stopped on {module} (exit {code})", file=sys.stderr, flush=True)
    return report(modules, args.min_kill_rate)


if __name__ == "__main__":
    sys.exit(main())
