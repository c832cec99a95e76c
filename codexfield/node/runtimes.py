"""Capsule runtimes: what a node can serve, declared in the capsule's `capsule.toml`.

    [runtime]
    kind = "onnx"            # onnx | python | dataset | naive-bayes (the demo's classifier)
    file = "model.onnx"      # onnx: the model file
    entry = "infer:run"      # python: module:function, imported from the capsule directory
    meter = "inference.call" # the terms' meter (an LDL meter name); MU per call follow it

`load_capsule(DIR)` returns a `Runtime`: `mu(input)` (MU of one call, known before the call so
the consumer signs it), `run(input)` (the JSON result) and `meter` (the name; its keccak256 is
the terms' `meter`). MU per runtime:

- onnx: `inference.call` (1 per call) or `dataset.records` (1 per input row, the default);
- python: `inference.call` (1 per call, the default) or `text.chars.100` (1 + chars // 100 of
  the JSON input);
- dataset (compute-to-data): `dataset.records`: the records a query scans (every row of the
  table queried). Queries run on the node and answer aggregates only (count, sum, mean, min,
  max, optionally grouped, groups under `min_group` rows withheld): the files never leave it.
- naive-bayes (the demo, no `[runtime]` needed): `text.chars.100`.

A directory with no runtime the node knows raises `CapsuleError` (one line: what to add).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eth_utils import keccak

MAX_ROWS = 10_000  # onnx: rows per call
MAX_JSON_CHARS = 64_000


class CapsuleError(ValueError):
    """The capsule directory cannot be served (the message says what to fix)."""


class InputError(ValueError):
    """A call's input that the runtime refuses (answered 400 `bad_input`, never served)."""


class Runtime:
    kind = ""
    meter = ""

    def mu(self, payload: Any) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def run(self, payload: Any) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def meter_id(self) -> bytes:
        """The terms' `meter` for this runtime (keccak256 of the meter name)."""
        return keccak(text=self.meter)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "meter": self.meter}


class NaiveBayesRuntime(Runtime):
    """The demo's text classifier (`codexfield.node.model.TextClassifier`)."""

    kind = "naive-bayes"

    def __init__(self, model: Any):
        from codexfield.node.model import METER_NAME

        self.model = model
        self.meter = METER_NAME

    def mu(self, payload: Any) -> int:
        from codexfield.node.model import MAX_INPUT_CHARS, mu_for

        if not isinstance(payload, str):
            raise InputError("this capsule classifies text: 'input' must be a string")
        if len(payload) > MAX_INPUT_CHARS:
            raise InputError(f"inputs are at most {MAX_INPUT_CHARS} characters")
        return mu_for(payload)

    def run(self, payload: Any) -> Any:
        return self.model.predict(payload)


class OnnxRuntime(Runtime):
    """An ONNX model through onnxruntime: input `{"<input name>": [[...], ...]}` or a list of
    rows (the model's single input); output `{"<output name>": [...]}`."""

    kind = "onnx"

    def __init__(self, path: Path, meter: str):
        try:
            import numpy as np
            import onnxruntime as ort
        except ImportError:
            raise CapsuleError("ONNX capsules need onnxruntime: pip install 'codexfield[runtimes]'") from None
        if meter not in ("dataset.records", "inference.call"):
            raise CapsuleError(f"an onnx capsule meters 'dataset.records' or 'inference.call', not {meter!r}")
        self.meter = meter
        self._np = np
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise CapsuleError(f"{path} is not a loadable ONNX model: {str(exc).splitlines()[0][:200]}") from None
        self.inputs = self.session.get_inputs()
        self.outputs = [o.name for o in self.session.get_outputs()]

    def _feeds(self, payload: Any) -> dict[str, Any]:
        if isinstance(payload, list):
            if len(self.inputs) != 1:
                raise InputError(f"this model has inputs {[i.name for i in self.inputs]}: send an object")
            payload = {self.inputs[0].name: payload}
        if not isinstance(payload, dict) or set(payload) != {i.name for i in self.inputs}:
            raise InputError(f"'input' must be an object with exactly the model inputs {[i.name for i in self.inputs]}")
        feeds = {}
        for spec in self.inputs:
            dtype = self._np.int64 if "int64" in spec.type else self._np.float32
            try:
                arr = self._np.asarray(payload[spec.name], dtype=dtype)
            except (TypeError, ValueError):
                raise InputError(f"input {spec.name!r} must be a numeric array") from None
            if arr.ndim == 0 or arr.shape[0] > MAX_ROWS:
                raise InputError(f"input {spec.name!r} must hold 1..{MAX_ROWS} rows")
            feeds[spec.name] = arr
        return feeds

    def mu(self, payload: Any) -> int:
        feeds = self._feeds(payload)
        return 1 if self.meter == "inference.call" else int(next(iter(feeds.values())).shape[0])

    def run(self, payload: Any) -> Any:
        out = self.session.run(self.outputs, self._feeds(payload))
        return {name: _jsonable(v) for name, v in zip(self.outputs, out)}


class PythonRuntime(Runtime):
    """A `module:function` entry point of the capsule (code or inference-script capsules): the
    function takes the JSON input and returns a JSON-serialisable result."""

    kind = "python"

    def __init__(self, directory: Path, entry: str, meter: str):
        if meter not in ("inference.call", "text.chars.100"):
            raise CapsuleError(f"a python capsule meters 'inference.call' or 'text.chars.100', not {meter!r}")
        module, _, func = entry.partition(":")
        if not module or not func or not (directory / (module.replace(".", "/") + ".py")).is_file():
            raise CapsuleError(f"runtime entry {entry!r}: use 'module:function' with module.py in {directory}")
        self.meter = meter
        spec = importlib.util.spec_from_file_location(
            f"capsule_{abs(hash(directory))}_{module}", directory / (module.replace(".", "/") + ".py")
        )
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.path.insert(0, str(directory))
        try:
            spec.loader.exec_module(mod)  # type: ignore[union-attr]
        except Exception as exc:
            raise CapsuleError(f"entry module {module!r} fails to import: {exc}") from None
        finally:
            sys.path.remove(str(directory))
        fn = getattr(mod, func, None)
        if not callable(fn):
            raise CapsuleError(f"{module}.py defines no function {func!r}")
        self.fn: Callable[[Any], Any] = fn

    def mu(self, payload: Any) -> int:
        text = json.dumps(payload, sort_keys=True)
        if len(text) > MAX_JSON_CHARS:
            raise InputError(f"inputs are at most {MAX_JSON_CHARS} characters of JSON")
        return 1 if self.meter == "inference.call" else 1 + len(text) // 100

    def run(self, payload: Any) -> Any:
        result = self.fn(payload)
        try:
            json.dumps(result)
        except (TypeError, ValueError):
            raise InputError("the capsule's function returned a result that is not JSON") from None
        return result


_AGGREGATES = ("count", "sum", "mean", "min", "max")
_OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


class DatasetRuntime(Runtime):
    """Compute-to-data over the capsule's CSV tables: the query runs here, only aggregates leave.

    Query: `{"table": "t" (optional when one table), "where": [["col", "op", value], ...],
    "aggregate": {"count": "*" | "sum"|"mean"|"min"|"max": "col"}, "group_by": "col"}`. Groups with
    fewer than `min_group` rows are withheld (the answer says how many)."""

    kind = "dataset"

    def __init__(self, directory: Path, meter: str, min_group: int):
        if meter != "dataset.records":
            raise CapsuleError(f"a dataset capsule meters 'dataset.records', not {meter!r}")
        self.meter = meter
        self.min_group = max(1, int(min_group))
        self.tables: dict[str, tuple[list[str], list[dict[str, Any]]]] = {}
        for f in sorted(directory.glob("*.csv")):
            with open(f, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                rows = [{k: _num(v) for k, v in r.items()} for r in reader]
                self.tables[f.stem] = (list(reader.fieldnames or []), rows)
        if not self.tables:
            raise CapsuleError(f"a dataset capsule needs at least one CSV table in {directory}")

    def _table(self, q: Any) -> tuple[list[str], list[dict[str, Any]]]:
        if not isinstance(q, dict):
            raise InputError("a dataset query is an object {table, where, aggregate, group_by}")
        name = q.get("table") or (next(iter(self.tables)) if len(self.tables) == 1 else None)
        if name not in self.tables:
            raise InputError(f"query one of the tables {sorted(self.tables)}")
        return self.tables[name]

    def mu(self, payload: Any) -> int:
        cols, rows = self._table(payload)
        self._plan(payload, cols)
        return max(1, len(rows))

    def _plan(self, q: dict, cols: list[str]) -> tuple[list, str, str, str | None]:
        where = q.get("where", [])
        if not isinstance(where, list) or not all(
            isinstance(c, list) and len(c) == 3 and c[0] in cols and c[1] in _OPS for c in where
        ):
            raise InputError(f"'where' is a list of [column, op, value] with columns {cols} and ops {list(_OPS)}")
        agg = q.get("aggregate", {"count": "*"})
        if not isinstance(agg, dict) or len(agg) != 1:
            raise InputError(f"'aggregate' is one of {list(_AGGREGATES)} -> column (rows never leave the node)")
        ((fn, col),) = agg.items()
        if fn not in _AGGREGATES or (col != "*" and col not in cols) or (fn != "count" and col == "*"):
            raise InputError(f"'aggregate' is one of {list(_AGGREGATES)} -> a column of {cols} ('count': '*')")
        group = q.get("group_by")
        if group is not None and group not in cols:
            raise InputError(f"'group_by' must be a column of {cols}")
        return where, fn, col, group

    def run(self, payload: Any) -> Any:
        cols, rows = self._table(payload)
        where, fn, col, group = self._plan(payload, cols)

        def keep(r: dict) -> bool:
            try:
                return all(_OPS[op](r[c], _num(v) if isinstance(v, str) else v) for c, op, v in where)
            except TypeError:
                return False

        groups: dict[Any, list[dict]] = {}
        for r in rows:
            if keep(r):
                groups.setdefault(r[group] if group else "*", []).append(r)
        out, withheld = {}, 0
        for k, rs in groups.items():
            if len(rs) < self.min_group:
                withheld += 1
                continue
            vals = [r[col] for r in rs] if col != "*" else rs
            if fn != "count" and not all(isinstance(x, (int, float)) for x in vals):
                raise InputError(f"column {col!r} is not numeric")
            out[str(k)] = (
                {
                    "count": len(vals),
                    "sum": sum(vals) if fn == "sum" else None,
                    "mean": sum(vals) / len(vals) if fn == "mean" else None,
                    "min": min(vals) if fn == "min" else None,
                    "max": max(vals) if fn == "max" else None,
                }[fn]
                if fn != "count"
                else len(rs)
            )
        return {
            "aggregate": fn,
            "column": col,
            "groups": out,
            "withheld_groups": withheld,
            "records_scanned": len(rows),
        }


def load_capsule(directory: str | Path) -> Runtime:
    """The runtime a capsule directory declares (see the module docstring)."""
    d = Path(directory)
    if d.is_file():  # the demo model shipped as a CAR
        from codexfield.car import is_car
        from codexfield.node.model import TextClassifier

        if not is_car(d):
            raise CapsuleError(
                f"{d} is neither a capsule directory nor a capsule CAR "
                "(write one with 'codexfield pack DIR --car OUT.car')"
            )
        return NaiveBayesRuntime(TextClassifier.load(d))
    if not d.is_dir():
        raise CapsuleError(f"{d} is not a capsule directory")
    manifest = d / "capsule.toml"
    try:
        meta = tomllib.loads(manifest.read_text()) if manifest.is_file() else {}
    except tomllib.TOMLDecodeError as exc:
        raise CapsuleError(f"{manifest} is not valid TOML: {exc}") from None
    rt = meta.get("runtime")
    if rt is None:
        if (d / "vocab.json").is_file():
            from codexfield.node.model import TextClassifier

            return NaiveBayesRuntime(TextClassifier.load(d))
        raise CapsuleError(
            f'{d} declares no runtime: add [runtime] kind = "onnx" | "python" | "dataset" to '
            "capsule.toml (docs/node.md)"
        )
    if not isinstance(rt, dict):
        raise CapsuleError(f"{manifest}: [runtime] must be a table")
    kind = rt.get("kind")
    if kind == "onnx":
        f = d / str(rt.get("file", "model.onnx"))
        if not f.is_file():
            raise CapsuleError(f"{manifest}: runtime file {f.name!r} is not in the capsule")
        return OnnxRuntime(f, str(rt.get("meter", "dataset.records")))
    if kind == "python":
        return PythonRuntime(d, str(rt.get("entry", "")), str(rt.get("meter", "inference.call")))
    if kind == "dataset":
        return DatasetRuntime(d, str(rt.get("meter", "dataset.records")), int(rt.get("min_group", 1)))
    if kind == "naive-bayes":
        from codexfield.node.model import TextClassifier

        return NaiveBayesRuntime(TextClassifier.load(d))
    raise CapsuleError(
        f"{manifest}: runtime kind {kind!r} is not served by this node: use onnx, python, dataset or naive-bayes"
    )


def as_runtime(model: Any) -> Runtime:
    """A Runtime as is; the demo's TextClassifier wrapped."""
    return model if isinstance(model, Runtime) else NaiveBayesRuntime(model)


def _num(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def _jsonable(v: Any) -> Any:
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v
