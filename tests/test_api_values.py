"""The Python API takes what ML code produces (issue 14, item 7).

numpy scalars, 0-d arrays and arrays (and pandas values, through the numpy protocol) are
converted to plain JSON at the call that receives them, or refused there with the
parameter named. Every stage here is really signed and read back from the store as JSON.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlspec_attest import api
from mlspec_attest.errors import BadInputError
from mlspec_attest.formats import mlvalues
from mlspec_attest.formats.jsonio import loads_strict
from mlspec_attest.formats.limits import MAX_JSON_DEPTH
from mlspec_attest.store.ledger import AttestationStore

from .support import KeyPair


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws/model.bin").write_bytes(b"model")
    return tmp_path / "ws"


@pytest.fixture
def session(ws: Path, keys: dict[str, KeyPair]) -> api.StageSession:
    """A session that has a product, so it can be signed."""
    s = api.StageSession(
        "train", key=keys["ml-engineer"].signer, store=ws / "store", run_id="r1", base_dir=ws
    )
    return s.product(ws / "model.bin")


def signed_metadata(store_dir: Path, run_id: str = "r1") -> list[dict[str, Any]]:
    """``byproducts.mlspec`` of every stored attestation, as the JSON that was signed."""
    out = []
    for att in AttestationStore(store_dir).attestations(run_id):
        assert att.bundle is not None
        statement = loads_strict(att.bundle.envelope.payload)  # bounded, as verify reads it
        out.append(statement["predicate"]["byproducts"]["mlspec"])
    return out


def exact(value: Any) -> Any:
    """``value`` with the JSON type of every leaf, so True == 1 cannot pass (numbers are
    one type: canonical JSON writes 1.0 as ``1``)."""
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [exact(v) for v in value]
    kind = "number" if type(value) in (int, float) else type(value).__name__
    return (kind, value)


def only_builtins(value: Any) -> bool:
    """Whether every container and leaf of ``value`` is a plain Python object (no numpy)."""
    if isinstance(value, dict):
        return all(type(k) is str and only_builtins(v) for k, v in value.items())
    if isinstance(value, list):
        return all(only_builtins(v) for v in value)
    return type(value) in (str, int, float, bool, type(None))


# ------------------------------------------------------------------ converted and signed
def test_numpy_values_are_signed_as_plain_json(ws: Path, keys: dict[str, KeyPair]) -> None:
    opts = {"key": keys["ml-engineer"].signer, "store": ws / "store", "run_id": "r1"}
    with api.stage("train", base_dir=ws, **opts) as s:
        s.product(ws / "model.bin", role="model")
        s.param("learning_rate", np.float32(0.1)).param("max_depth", np.int64(4))
        s.params({"early_stop": np.bool_(True), "seed": np.array(7), "loss": np.str_("l2")})
        s.metric("auc", np.float32(0.9)).metric("rows", np.int64(1000))
        s.metric("rmse", np.array(np.float64(0.25)))
        s.slice_metrics("sex", np.int64(1), count=np.int64(45), metrics={"mae": np.float32(0.5)})
        s.infra("acceleratorCount", np.int64(2)).infra("memory_gb", np.float32(15.5))
        s.detail("weights", np.array([[0.5, 0.25], [1.0, 2.0]], dtype=np.float32))
        s.detail("mask", np.array([True, False])).detail("labels", np.array(["a", "b"]))
        s.search(
            [{"params": {"depth": np.int64(d)}, "score": np.float64(v)} for d, v in ((2, 0.3),)],
            method="grid",
            best={"depth": np.int64(2)},
            space={"depth": np.arange(2, 5)},
        )
    [meta] = signed_metadata(ws / "store")
    assert exact(meta["parameters"]) == exact(
        {"learning_rate": 0.1, "max_depth": 4, "early_stop": True, "seed": 7, "loss": "l2"}
    )
    assert exact(meta["metrics"]) == exact({"auc": 0.9, "rows": 1000, "rmse": 0.25})
    assert exact(meta["slices"]) == exact({"sex": {"1": {"count": 45, "metrics": {"mae": 0.5}}}})
    assert exact(meta["infrastructure"]) == exact({"acceleratorCount": 2, "memory_gb": 15.5})
    details = meta["details"]
    assert exact(details["weights"]) == exact([[0.5, 0.25], [1.0, 2.0]])
    assert exact(details["mask"]) == exact([True, False])
    assert details["labels"] == ["a", "b"]
    assert exact(details["search"]) == exact(
        {
            "method": "grid",
            "trials": [{"params": {"depth": 2}, "score": 0.3}],
            "best": {"depth": 2},
            "space": {"depth": [2, 3, 4]},
        }
    )
    # The SignedStage the caller gets holds the same values, as plain Python objects.
    assert s.result is not None and s.result.bundle.envelope.verified_by(keys["ml-engineer"].public)
    in_memory = s.result.statement.metadata
    assert in_memory.parameters == meta["parameters"]
    assert in_memory.metrics == meta["metrics"]
    for section in ("parameters", "metrics", "slices", "infrastructure", "details"):
        assert only_builtins(getattr(in_memory, section)), section
    assert type(in_memory.parameters["seed"]) is int  # a 0-d int array is an int
    assert type(in_memory.metrics["auc"]) is float


def test_attest_converts_its_parameters_and_metrics(ws: Path, keys: dict[str, KeyPair]) -> None:
    result = api.attest(
        "ingest",
        key=keys["data-engineer"].signer,
        products=[ws / "model.bin"],
        parameters={"sample": np.float64(0.5), "limit": np.uint32(10)},
        metrics={"rows": np.int32(3), "missing_rate": np.float16(0.1)},
        store=ws / "store",
        run_id="r1",
        base_dir=ws,
    )
    [meta] = signed_metadata(ws / "store")
    assert exact(meta["parameters"]) == exact({"sample": 0.5, "limit": 10})
    assert exact(meta["metrics"]) == exact({"rows": 3, "missing_rate": 0.1})
    assert result.statement.metadata.metrics == meta["metrics"]


def test_narrow_floats_are_recorded_as_numpy_prints_them() -> None:
    # float32(0.9) is 0.8999999761581421 as a double; "auc >= 0.9" must hold for it
    assert float(np.float32(0.9)) < 0.9
    assert mlvalues.json_value(np.float32(0.9), what="metric 'auc'") == 0.9
    assert mlvalues.json_value(np.float16(0.1), what="x") == 0.1
    assert mlvalues.json_value(np.float32(1 / 3), what="x") == float(str(np.float32(1 / 3)))
    assert mlvalues.json_value(np.array([0.9, 0.7], dtype=np.float32), what="x") == [0.9, 0.7]
    assert mlvalues.json_value(np.float64(1 / 3), what="x") == 1 / 3  # doubles exactly
    assert mlvalues.json_value(np.longdouble(0.5), what="x") == 0.5


def test_aware_datetimes_become_rfc3339_where_a_string_is_accepted(
    session: api.StageSession, ws: Path
) -> None:
    cet = timezone(timedelta(hours=1))
    session.param("cutoff", datetime(2024, 3, 1, 13, 30, tzinfo=cet))
    session.detail(
        "window", [datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, 0, 0, 0, 5, UTC)]
    )
    session.finish()
    [meta] = signed_metadata(ws / "store")
    assert meta["parameters"] == {"cutoff": "2024-03-01T12:30:00Z"}
    assert meta["details"]["window"] == ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00.000005Z"]


def test_import_mlspec_attest_api_does_not_import_numpy() -> None:
    code = "import sys, mlspec_attest.api; print('numpy' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


# ------------------------------------------------------------------ refused at the call
Call = Callable[[api.StageSession], object]

REFUSED: list[tuple[str, Call, str]] = [
    (
        "nan param",
        lambda s: s.param("learning_rate", np.float64("nan")),
        "param 'learning_rate': nan is not finite",
    ),
    (
        "inf metric",
        lambda s: s.metric("auc", np.float32("inf")),
        "stage train: metric 'auc': inf is not finite",
    ),
    (
        "bool metric",
        lambda s: s.metric("ok", np.bool_(True)),
        "stage train: metric 'ok' is not a number (True)",
    ),
    (
        "array param",
        lambda s: s.param("layers", np.array([64, 32])),
        "param 'layers': a list or array is not a parameter value",
    ),
    (
        "datetime64 param",
        lambda s: s.param("cutoff", np.datetime64("2024-01-01")),
        "param 'cutoff': a numpy datetime64 has no time zone",
    ),
    (
        "naive datetime",
        lambda s: s.params({"cutoff": datetime(2024, 1, 1)}),
        "param 'cutoff': 2024-01-01T00:00:00 has no time zone",
    ),
    (
        "object array",
        lambda s: s.detail("rows", np.array([{"a": 1}, None], dtype=object)),
        "detail 'rows': an array of Python objects (dtype object)",
    ),
    (
        "nan inside an array",
        lambda s: s.detail("losses", np.array([0.5, np.nan], dtype=np.float32)),
        "detail 'losses'[1]: nan is not finite",
    ),
    ("complex", lambda s: s.infra("phase", np.complex64(1j)), "infra 'phase': a complex number"),
    (
        "int64 beyond 2^53",
        lambda s: s.detail("ids", [np.uint64(2**63)]),
        "detail 'ids'[0]: integer 9223372036854775808 is outside",
    ),
    ("bytes", lambda s: s.detail("blob", np.bytes_(b"x")), "detail 'blob': bytes are not"),
    (
        "non-string key",
        lambda s: s.detail("by_class", {np.int64(1): 0.5}),
        "detail 'by_class': key np.int64(1) is not a string",
    ),
    ("set", lambda s: s.detail("tags", {"a"}), "detail 'tags': a set is not a JSON value"),
    (
        "unknown object",
        lambda s: s.infra("rng", np.random.default_rng(0)),
        "infra 'rng': a numpy.random._generator.Generator is not a JSON value",
    ),
    (
        "double written as a big integer",
        lambda s: s.detail("n", np.float64(1.2e17)),
        "detail 'n': number 1.2e+17 would be written as an integer",
    ),
    (
        "nan search score",
        lambda s: s.search([{"params": {}, "score": np.float32("nan")}], method="grid"),
        "search['trials'][0]['score']: nan is not finite",
    ),
    (
        "fractional slice count",
        lambda s: s.slice_metrics("sex", 1, count=np.float64(-3.5), metrics={}),
        "slice sex=1: count: a count must be a whole number, at least 0 (-3.5)",
    ),
    (
        "nan slice metric",
        lambda s: s.slice_metrics("sex", 1, count=1, metrics={"mae": np.float32("nan")}),
        "slice sex=1: metric 'mae': nan is not finite",
    ),
]


def recorded(session: api.StageSession) -> list[Any]:
    r = session.record
    sections = (r.parameters, r.metrics, r.slices, r.details, r.infrastructure)
    return [copy.deepcopy(section) for section in sections]


@pytest.mark.parametrize(("call", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused_at_the_call_naming_the_parameter(
    session: api.StageSession, ws: Path, call: Call, message: str
) -> None:
    before = recorded(session)
    with pytest.raises(BadInputError) as info:
        call(session)
    assert info.value.message.startswith(message), info.value.message
    assert "--" not in info.value.message  # the library's words, never a flag
    assert recorded(session) == before  # nothing half-recorded
    session.finish()  # the session is still usable: the refused value never got in
    assert len(signed_metadata(ws / "store")) == 1


def test_params_records_nothing_when_one_is_refused(session: api.StageSession) -> None:
    with pytest.raises(BadInputError, match=r"param 'b': nan is not finite"):
        session.params({"a": np.int64(1), "b": np.float64("nan")})
    assert session.record.parameters == {}


def test_attest_refuses_before_signing(ws: Path, keys: dict[str, KeyPair]) -> None:
    with pytest.raises(BadInputError, match=r"^param 'layers': a list or array"):
        api.attest(
            "train",
            key=keys["ml-engineer"].signer,
            products=[ws / "model.bin"],
            parameters={"layers": np.array([64, 32])},
            store=ws / "store",
            run_id="r1",
            base_dir=ws,
        )
    assert not (ws / "store/runs/r1").exists()


# ------------------------------------------------------------------ bounds
def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_is_bounded_so_the_signed_statement_reads_back(
    session: api.StageSession, ws: Path
) -> None:
    deepest = MAX_JSON_DEPTH - 5  # Statement, predicate, byproducts, mlspec, details
    with pytest.raises(
        BadInputError, match=rf"^detail 'deep'(\[0\])+: nested deeper than {deepest}"
    ):
        session.detail("deep", nested(deepest + 1))
    with pytest.raises(BadInputError, match=r"^detail 'cube': nested deeper"):
        session.detail("cube", np.zeros((1,) * (deepest + 1)))
    session.detail("deep", nested(deepest))  # the deepest value that still verifies
    session.finish()
    [meta] = signed_metadata(ws / "store")  # read back through the depth-bounded reader
    assert meta["details"]["deep"] == nested(deepest)


def test_an_array_too_large_for_a_statement_is_refused_before_it_is_copied(
    session: api.StageSession,
) -> None:
    huge = np.zeros(mlvalues.MAX_ARRAY_ITEMS + 1, dtype=np.bool_)
    with pytest.raises(BadInputError, match=r"^detail 'mask': an array of \d+ items cannot fit"):
        session.detail("mask", huge)


# ------------------------------------------------------------------ pandas
def test_pandas_values(session: api.StageSession, ws: Path) -> None:
    pd = pytest.importorskip("pandas")
    session.param("cutoff", pd.Timestamp("2024-01-01T00:00:00.123456789", tz="UTC"))
    session.detail("counts", pd.Series([1, 2], dtype="int64"))
    session.detail("labels", pd.Series(["a", "b"], dtype="category"))
    session.detail("seen", pd.Series(pd.to_datetime(["2024-07-01T12:00"])).dt.tz_localize("CET"))
    session.metric("auc", pd.Series([0.9], dtype="float32").iloc[0])
    for value, message in (
        (pd.NA, "param 'x': pandas.NA is a missing value"),
        (pd.NaT, "param 'x': pandas.NaT is a missing time"),
        (pd.Timestamp("2024-01-01"), "param 'x': 2024-01-01T00:00:00 has no time zone"),
        (pd.Series([1, None], dtype="Int64"), "param 'x'[1]: a missing value"),
        (pd.Series(pd.to_datetime(["2024-01-01"])), "param 'x': a numpy datetime64 has no"),
        (pd.DataFrame({"a": [1]}), "param 'x': a pandas DataFrame is a table"),
    ):
        with pytest.raises(BadInputError) as info:
            session.param("x", value)
        assert info.value.message.startswith(message), info.value.message
    session.finish()
    [meta] = signed_metadata(ws / "store")
    assert meta["parameters"] == {"cutoff": "2024-01-01T00:00:00.123456789Z"}
    assert meta["details"]["counts"] == [1, 2]
    assert meta["details"]["labels"] == ["a", "b"]
    assert meta["details"]["seen"] == ["2024-07-01T10:00:00Z"]
    assert meta["metrics"] == {"auc": 0.9}


# pandas is not installed in every environment (it is no dependency): these stand-ins have
# the module and type names pandas gives its values, and the ``to_numpy`` a Series has.
class NAType:
    __module__ = "pandas._libs.missing"


class NaTType:
    __module__ = "pandas._libs.tslibs.nattype"


class Series:
    __module__ = "pandas.core.series"

    def __init__(self, values: Any) -> None:
        self._values = values

    def to_numpy(self) -> Any:
        return np.asarray(self._values)


class DataFrame(Series):
    __module__ = "pandas.core.frame"
    columns = ("a",)


def test_pandas_shaped_values_are_dispatched_by_their_module() -> None:
    assert mlvalues.json_value(Series([1.5, 2.5]), what="x") == [1.5, 2.5]
    assert mlvalues.json_value({"s": Series([True])}, what="x") == {"s": [True]}
    # pandas keeps strings as Python objects: converted one by one, not refused
    assert mlvalues.json_value(Series(np.array(["a", 1], dtype=object)), what="x") == ["a", 1]
    for value, message in (
        (NAType(), "x: pandas.NA is a missing value"),
        (NaTType(), "x: pandas.NaT is a missing time"),
        (Series(np.array(["a", b"b"], dtype=object)), "x[1]: a bytes is not a JSON value"),
        (DataFrame([[1]]), "x: a pandas DataFrame is a table"),
    ):
        with pytest.raises(BadInputError) as info:
            mlvalues.json_value(value, what="x")
        assert info.value.message.startswith(message)
