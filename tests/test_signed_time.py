"""Signed times are evidence, not truth; ordering never rests on signer clocks alone."""

from __future__ import annotations

from datetime import UTC, datetime

from mlspec_attest.verify.report import Check

from .support import STAGES, FakeClock, Pipeline


def _messages(pipeline: Pipeline, check: Check) -> list[str]:
    return [f"{f.stage}: {f.message}" for f in pipeline.verify().failures if f.check is check]


def test_start_after_finish_is_refused(pipeline: Pipeline) -> None:
    pipeline.sign("ingest")
    times = iter(["2025-07-01T00:00:00Z", "2025-01-01T00:00:00Z"])  # start, then finish
    pipeline.clock = lambda: next(times)  # type: ignore[assignment]
    pipeline.sign("split")
    assert "split: signed times are inconsistent: started after it finished" in _messages(
        pipeline, Check.SIGNED_TIME
    )


def test_finish_in_the_future_is_refused(pipeline: Pipeline) -> None:
    pipeline.run()
    pipeline.clock = FakeClock(datetime(2099, 6, 1, tzinfo=UTC))
    pipeline.sign("package")  # re-signed "in 2099" while verify runs in 2098
    messages = _messages(pipeline, Check.SIGNED_TIME)
    assert messages == ["package: signed times are inconsistent: finished in the future"]


def test_a_backdated_order_without_causal_evidence_is_denied(pipeline: Pipeline) -> None:
    """train really ran before split, but its signed clock claims it ran after."""
    pipeline.sign("ingest")
    STAGES["split"].build(pipeline.ws)  # the split files exist, unsigned
    pipeline.clock = FakeClock(datetime(2025, 8, 1, tzinfo=UTC))  # a clock set ahead
    pipeline.sign_all_signers("train")
    pipeline.clock = FakeClock(datetime(2025, 6, 2, tzinfo=UTC))
    pipeline.sign("split", build=False)
    pipeline.sign("package", via_api=True)
    report = pipeline.verify()
    ordering = [f for f in report.failures if f.check is Check.ORDERING]
    assert [(f.stage, f.message) for f in ordering] == [
        ("train", "no evidence that it started after 'split' had been attested"),
        ("train", "no evidence that it started after 'split' had been attested"),
    ]  # once per train attestation (threshold 2), each naming its file
    assert {f.source for f in ordering} == {
        p.name for p in pipeline.store.run_dir(pipeline.run_id).glob("train.*")
    }


def test_stage_signed_before_its_predecessor_is_denied_even_with_good_clocks(
    pipeline: Pipeline,
) -> None:
    pipeline.sign("ingest")
    # split signs first but its clock says it started after ingest finished
    pipeline.sign("split")
    for path in pipeline.store.run_dir(pipeline.run_id).glob("ingest.*"):
        path.unlink()
    pipeline.clock = FakeClock(datetime(2025, 5, 1, tzinfo=UTC))  # earlier than split's times
    pipeline.sign("ingest")  # a different ingest attestation, clocks before split
    pipeline.clock = FakeClock(datetime(2025, 7, 1, tzinfo=UTC))
    pipeline.sign_all_signers("train")
    pipeline.sign("package", via_api=True)
    messages = _messages(pipeline, Check.ORDERING)
    assert messages == [
        "split: started after a different version of 'ingest' than the one verified"
    ]


def test_stage_that_saw_no_predecessor_is_denied(pipeline: Pipeline) -> None:
    """Good clocks, but split started when no ingest attestation existed."""
    pipeline.clock = FakeClock(datetime(2025, 5, 1, tzinfo=UTC))
    pipeline.sign("ingest")
    run_dir = pipeline.store.run_dir(pipeline.run_id)
    [ingest] = run_dir.glob("ingest.*")
    hidden = ingest.with_name(".hidden-ingest")
    ingest.rename(hidden)  # split starts while ingest is not (yet) in the run
    pipeline.sign("split")
    hidden.rename(ingest)
    pipeline.sign_all_signers("train")
    pipeline.sign("package", via_api=True)
    assert _messages(pipeline, Check.ORDERING) == [
        "split: no evidence that it started after 'ingest' had been attested"
    ]


def test_honest_parallel_signers_pass(pipeline: Pipeline) -> None:
    pipeline.run()
    report = pipeline.verify()
    assert report.passed, [f.to_json() for f in report.failures]
