"""Tests of condorcof.accumulate: supported types, errors, and tree-shape independence."""

from __future__ import annotations

import copy
import gc
import pickle
import random
import weakref
from collections import Counter, OrderedDict, defaultdict
from typing import Any

import boost_histogram as bh
import hist
import numpy as np
import pytest

from condorcof.accumulate import accumulate, add, iadd
from condorcof.errors import AccumulatorError

DATASETS = ("DYJets", "TTbar", "WJets")
RTOL = 1e-12  # float sums may differ in the last bits when reassociated


# ---------------------------------------------------------------- helpers


class ValueAcc:
    """Minimal stand-in for coffea's value_accumulator (add mutates, returns None)."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def identity(self) -> ValueAcc:
        return ValueAcc()

    def add(self, other: ValueAcc) -> None:
        self.value = self.value + other.value


class Plus:
    """An immutable value that only defines ``__add__``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __add__(self, other: Plus) -> Plus:
        return Plus(self.n + other.n)


class DictAcc(dict):
    """Stand-in for coffea's dict_accumulator: a dict subclass with add/identity."""

    def identity(self) -> DictAcc:
        return DictAcc()

    def add(self, other: dict) -> None:  # pragma: no cover - dicts merge recursively
        raise AssertionError("dict subclasses are merged key by key")


def make_hists() -> dict[str, Any]:
    """Empty histograms of every storage the partials use."""
    cat = hist.axis.StrCategory([], growth=True, name="dataset")
    return {
        "mass": hist.Hist(cat, hist.axis.Regular(20, 60, 120, name="mass")),
        "pt": hist.Hist(
            hist.axis.Variable([0, 10, 30, 60, 100, 200], name="pt"),
            hist.axis.Boolean(name="tight"),
            storage=hist.storage.Weight(),
        ),
        "njet": hist.Hist(hist.axis.Integer(0, 8, name="njet"), storage=hist.storage.Int64()),
        "flavour": hist.Hist(
            hist.axis.IntCategory([], growth=True, name="flav"), storage=hist.storage.Double()
        ),
        "profile": hist.Hist(hist.axis.Regular(5, 0, 1, name="x"), storage=hist.storage.Mean()),
        "wprofile": hist.Hist(
            hist.axis.Regular(5, 0, 1, name="x"), storage=hist.storage.WeightedMean()
        ),
        "boost": bh.Histogram(bh.axis.Regular(4, 0, 1), storage=bh.storage.Weight()),
    }


def make_partial(rng: np.random.Generator, index: int) -> dict[str, Any]:
    """A processor output for one chunk; datasets and keys vary between chunks."""
    dataset = DATASETS[int(rng.integers(len(DATASETS)))]
    n = int(rng.integers(5, 60))
    h = make_hists()
    h["mass"].fill(dataset=dataset, mass=rng.uniform(50, 130, n))
    h["pt"].fill(
        pt=rng.exponential(40, n), tight=rng.random(n) < 0.5, weight=rng.normal(1.0, 0.3, n)
    )
    h["njet"].fill(rng.integers(0, 9, n))
    h["flavour"].fill(rng.choice([0, 4, 5, 21], n), weight=rng.random(n))
    h["profile"].fill(rng.random(n), sample=rng.normal(5, 2, n))
    h["wprofile"].fill(rng.random(n), sample=rng.normal(5, 2, n), weight=rng.random(n))
    h["boost"].fill(rng.random(n), weight=rng.random(n))
    cutflow: defaultdict[str, int] = defaultdict(int)
    cutflow["all"] += n
    if rng.random() < 0.7:
        cutflow[f"cut{int(rng.integers(3))}"] += int(rng.integers(n))
    out: dict[str, Any] = {
        dataset: {
            **h,
            "cutflow": cutflow,
            "sumw": float(rng.normal(100, 10)),
            "nevents": np.int64(n),
            "weights": rng.normal(size=4),
            "counts": rng.integers(0, 10, size=(2, 3)),
            "runs": {int(r) for r in rng.integers(1, 9, 2)},
            "chunks": [index],
            "acc": ValueAcc(float(n)),
            "plus": Plus(n),
        },
        "processed": Counter({dataset: n}),
        "order": OrderedDict([(f"k{int(rng.integers(4))}", 1.5)]),
    }
    if rng.random() < 0.3:
        out["rare"] = {"only_sometimes": np.float32(0.5)}
    return out


def partials(seed: int, count: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [make_partial(rng, i) for i in range(count)]


def tree_merge(items: list[Any], rng: random.Random, fan_in: int, mutate: bool) -> Any:
    """Merge contiguous groups of at most ``fan_in`` items, recursively, at random cuts."""
    if len(items) <= fan_in:
        if mutate:
            return accumulate(copy.deepcopy(items))
        return accumulate(items)
    cuts = sorted(rng.sample(range(1, len(items)), fan_in - 1))
    groups = [items[i:j] for i, j in zip([0, *cuts], [*cuts, len(items)], strict=True)]
    merged = [tree_merge(group, rng, fan_in, mutate) for group in groups]
    if mutate:
        return accumulate(merged)
    total = None
    for part in merged:
        total = add(total, part)
    return total


def assert_same(x: Any, y: Any, path: str = "") -> None:
    """Exact equality, except float contents compared with a tight relative tolerance."""
    assert type(x) is type(y), path
    if isinstance(x, dict):
        assert list(x) == list(y), path
        assert getattr(x, "default_factory", None) is getattr(y, "default_factory", None)
        for key in x:
            assert_same(x[key], y[key], f"{path}[{key!r}]")
    elif isinstance(x, bh.Histogram):
        assert x.axes == y.axes, path
        assert x.storage_type is y.storage_type, path
        assert_same_array(np.asarray(x.view(flow=True)), np.asarray(y.view(flow=True)), path)
    elif isinstance(x, np.ndarray):
        assert_same_array(x, y, path)
    elif isinstance(x, (float, np.floating)):
        np.testing.assert_allclose(x, y, rtol=RTOL, err_msg=path)
    elif isinstance(x, (ValueAcc, Plus)):
        assert_same(vars(x), vars(y), path)
    else:
        assert x == y, path


def assert_same_array(x: np.ndarray, y: np.ndarray, path: str) -> None:
    assert x.dtype == y.dtype and x.shape == y.shape, path
    for field in x.dtype.names or [None]:
        a, b = (x, y) if field is None else (x[field], y[field])
        if a.dtype.kind in "iub":
            np.testing.assert_array_equal(a, b, err_msg=path)
        else:
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-12, err_msg=f"{path}.{field}")


# ---------------------------------------------------------------- tree shape


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fan_in", [2, 3, 5, 17])
def test_tree_shape_does_not_change_the_result(seed: int, fan_in: int) -> None:
    items = partials(seed, 40)
    reference = accumulate(copy.deepcopy(items))
    rng = random.Random(seed * 100 + fan_in)
    for mutate in (False, True):
        assert_same(tree_merge(items, rng, fan_in, mutate), reference)


def test_tree_merge_left_the_partials_untouched() -> None:
    items = partials(7, 12)
    before = pickle.dumps(items)
    tree_merge(items, random.Random(1), 3, mutate=False)
    accumulate(items)
    assert pickle.dumps(items) == before


def test_integer_counts_are_exact_and_totals_right() -> None:
    items = partials(3, 30)
    a = tree_merge(items, random.Random(5), 2, mutate=False)
    b = accumulate(iter(items))
    for dataset in DATASETS:
        if dataset not in a:
            continue
        mass_a, mass_b = a[dataset]["mass"], b[dataset]["mass"]
        np.testing.assert_array_equal(mass_a.values(flow=True), mass_b.values(flow=True))
        assert a[dataset]["njet"].sum(flow=True) == a[dataset]["nevents"]
        assert a[dataset]["cutflow"]["all"] == a[dataset]["nevents"]
        assert a[dataset]["acc"].value == a[dataset]["nevents"]
        assert a[dataset]["plus"].n == a[dataset]["nevents"]
    assert sum(a["processed"].values()) == sum(sum(p["processed"].values()) for p in items)
    chunks = sorted(c for d in DATASETS if d in a for c in a[d]["chunks"])
    assert chunks == list(range(30))


def test_weighted_hist_sums_values_and_variances() -> None:
    items = partials(11, 25)
    total = tree_merge(items, random.Random(2), 4, mutate=False)
    for dataset in DATASETS:
        pts = [p[dataset]["pt"] for p in items if dataset in p]
        if not pts:
            continue
        merged = total[dataset]["pt"]
        np.testing.assert_allclose(merged.values(), sum(h.values() for h in pts), rtol=RTOL)
        np.testing.assert_allclose(merged.variances(), sum(h.variances() for h in pts), rtol=RTOL)


def test_growing_categories_keep_first_appearance_order() -> None:
    items = partials(5, 30)
    total = tree_merge(items, random.Random(9), 3, mutate=True)
    for dataset in DATASETS:
        order = [p[dataset]["flavour"].axes[0] for p in items if dataset in p]
        if not order:
            continue
        seen: list[int] = []
        for axis in order:
            seen += [c for c in axis if c not in seen]
        assert list(total[dataset]["flavour"].axes[0]) == seen


@pytest.mark.parametrize("seed", range(5))
def test_add_is_associative(seed: int) -> None:
    a, b, c = partials(seed + 50, 3)
    assert_same(add(add(a, b), c), add(a, add(b, c)))


def test_checker_detects_a_difference() -> None:
    """The comparison used above is not vacuous."""
    items = partials(1, 6)
    reference = accumulate(items)
    dataset = next(d for d in DATASETS if d in reference)
    changed = copy.deepcopy(reference)
    changed[dataset]["pt"].fill(pt=[5.0], tight=[True], weight=[1e-6])
    with pytest.raises(AssertionError):
        assert_same(changed, reference)
    changed = copy.deepcopy(reference)
    changed[dataset]["counts"][0, 0] += 1
    with pytest.raises(AssertionError):
        assert_same(changed, reference)


# ---------------------------------------------------------------- semantics


def test_add_does_not_mutate_or_alias_inputs() -> None:
    a = {"x": {"h": make_hists()["mass"], "l": [1]}, "s": {1}}
    b = {"x": {"h": make_hists()["mass"], "l": [2]}, "only_b": {"l": [3], "arr": np.ones(2)}}
    a["x"]["h"].fill(dataset="A", mass=[70.0])
    b["x"]["h"].fill(dataset="B", mass=[80.0])
    before_a, before_b = pickle.dumps(a), pickle.dumps(b)
    total = add(a, b)
    assert pickle.dumps(a) == before_a and pickle.dumps(b) == before_b
    iadd(total, copy.deepcopy(total))
    total["only_b"]["l"].append(4)
    total["only_b"]["arr"] += 1
    assert pickle.dumps(b) == before_b
    assert total["x"]["l"] == [1, 2, 1, 2]


def test_iadd_updates_left_in_place() -> None:
    a = {"h": hist.Hist(hist.axis.Regular(3, 0, 1)), "arr": np.zeros(3), "s": {1}, "l": [1]}
    ids = {key: id(value) for key, value in a.items()}
    b = copy.deepcopy(a)
    b["h"].fill([0.5])
    b["arr"] += 2
    assert iadd(a, b) is a
    assert {key: id(value) for key, value in a.items()} == ids
    assert a["h"].sum() == 1 and a["arr"].tolist() == [2, 2, 2]


def test_keys_on_one_side_are_taken_as_they_are() -> None:
    assert add({"a": 1}, {"b": [2]}) == {"a": 1, "b": [2]}
    assert add({"a": {"x": 1}}, {"a": {"y": 2}}) == {"a": {"x": 1, "y": 2}}


def test_defaultdict_keeps_type_and_factory() -> None:
    a: defaultdict[str, list] = defaultdict(list, {"x": [1]})
    total = add(a, {"y": [2]})
    assert type(total) is defaultdict and total.default_factory is list
    assert total == {"x": [1], "y": [2]}
    left_plain = add({"x": 1}, defaultdict(int, {"x": 2}))
    assert type(left_plain) is dict and left_plain == {"x": 3}
    sub = add(DictAcc(a=1), DictAcc(a=2, b=3))
    assert type(sub) is DictAcc and sub == {"a": 3, "b": 3}


def test_none_is_the_identity() -> None:
    assert add(None, {"a": 1}) == {"a": 1}
    assert add({"a": 1}, None) == {"a": 1}
    assert add({"a": None}, {"a": 2}) == {"a": 2}
    assert add(None, None) is None


def test_accumulate_empty_start_and_none_items() -> None:
    assert accumulate([]) is None
    start = {"n": 1}
    assert accumulate([], start=start) is start
    assert accumulate([None, {"n": 2}, None, {"n": 3}], start=start) is start
    assert start == {"n": 6}
    assert accumulate(iter([{"n": 1}, {"n": 2}])) == {"n": 3}


class Tracked:
    """A weak-referenceable accumulator, to see which partials are still alive."""

    def __init__(self, n: int) -> None:
        self.n = n

    def add(self, other: Tracked) -> None:
        self.n += other.n

    def __deepcopy__(self, memo: dict) -> Tracked:
        return Tracked(self.n)


def test_accumulate_streams_holding_only_the_total() -> None:
    refs: list[weakref.ref] = []

    def produce():
        for i in range(5):
            gc.collect()
            # every partial before the previous one must already be gone
            assert all(ref() is None for ref in refs[:-1])
            item = Tracked(i)
            refs.append(weakref.ref(item))
            yield {"t": item}

    assert accumulate(produce())["t"].n == 10


def test_numbers_and_numpy_scalars() -> None:
    total = add({"i": 1, "f": 0.5, "n": np.int64(2), "c": 1j}, {"i": 2, "f": 0.25, "n": 3, "c": 1})
    assert total == {"i": 3, "f": 0.75, "n": 5, "c": 1 + 1j}
    assert isinstance(total["n"], np.int64)


def test_arrays_promote_and_need_equal_shapes() -> None:
    a = np.array([1, 2])
    total = add({"a": a}, {"a": np.array([0.5, 0.5])})
    assert total["a"].dtype == np.float64 and total["a"].tolist() == [1.5, 2.5]
    assert a.tolist() == [1, 2]
    frozen = np.array([1.0, 2.0])
    frozen.flags.writeable = False
    assert iadd(frozen, np.ones(2)).tolist() == [2.0, 3.0]
    with pytest.raises(AccumulatorError, match=r"\['a'\].*shapes differ: \(2,\) vs \(3,\)"):
        add({"a": a}, {"a": np.ones(3)})
    with pytest.raises(AccumulatorError, match="ndarray and int"):
        add({"a": a}, {"a": 1})


def test_sets_and_lists() -> None:
    assert add({1, 2}, {2, 3}) == {1, 2, 3}
    assert add(frozenset({1}), frozenset({2})) == frozenset({1, 2})
    assert add([1, 2], [2]) == [1, 2, 2]
    with pytest.raises(AccumulatorError, match="list and set"):
        add([1], {1})


@pytest.mark.parametrize("value", [(1, 2), "ab", b"ab"])
def test_concatenating_types_are_rejected(value: Any) -> None:
    with pytest.raises(AccumulatorError, match=r"\['k'\].*not accumulators"):
        add({"k": value}, {"k": value})


def test_unsupported_type_names_path_and_types() -> None:
    with pytest.raises(AccumulatorError) as info:
        add({"DYJets": {"mass": object()}}, {"DYJets": {"mass": object()}})
    message = str(info.value)
    assert "['DYJets']['mass']" in message
    assert message.count("object") >= 2
    with pytest.raises(AccumulatorError, match=r"\['x'\]: a mapping can only"):
        add({"x": {"a": 1}}, {"x": 5})
    with pytest.raises(AccumulatorError, match="ValueError: bad"):
        add(Failing(), Failing())


class Failing:
    def add(self, other: Failing) -> None:
        raise ValueError("bad")


def _h(*axes: Any, storage: Any = None) -> hist.Hist:
    return hist.Hist(*axes, storage=storage or hist.storage.Double())


@pytest.mark.parametrize(
    ("left", "right", "detail"),
    [
        (
            _h(hist.axis.Regular(10, 0, 1, name="mass")),
            _h(hist.axis.Regular(12, 0, 1, name="mass")),
            r"axis 0 \('mass'\): bins differ: 10 bins \[0, 1\] vs 12 bins \[0, 1\]",
        ),
        (
            _h(hist.axis.Regular(10, 0, 1, name="mass")),
            _h(hist.axis.Regular(10, 0, 1, name="pt")),
            r"axis 0 \('mass'\): name 'mass' vs 'pt'",
        ),
        (
            _h(hist.axis.Regular(10, 0, 1, name="mass")),
            _h(hist.axis.Regular(10, 0, 1, name="mass"), storage=hist.storage.Weight()),
            "storage differs: Double vs Weight",
        ),
        (
            _h(hist.axis.Regular(10, 0, 1, name="mass")),
            _h(hist.axis.Regular(10, 0, 1, name="mass"), hist.axis.Boolean(name="b")),
            "number of axes differs: 1 vs 2",
        ),
        (
            _h(hist.axis.Variable([0, 1, 2], name="v")),
            _h(hist.axis.Regular(2, 0, 2, name="v")),
            "type Variable vs Regular",
        ),
        (
            _h(hist.axis.StrCategory(["a"], name="c")),
            _h(hist.axis.StrCategory(["b"], name="c")),
            r"bins differ: \['a'\] vs \['b'\]",
        ),
        (
            _h(hist.axis.Regular(10, 0, 1, name="m", label="M")),
            _h(hist.axis.Regular(10, 0, 1, name="m", label="Mass")),
            "label 'M' vs 'Mass'",
        ),
    ],
)
def test_histogram_mismatch_says_where_and_what(left: Any, right: Any, detail: str) -> None:
    with pytest.raises(AccumulatorError, match=r"at \['DYJets'\]\['mass'\]: .*" + detail):
        add({"DYJets": {"mass": left}}, {"DYJets": {"mass": right}})


def test_histogram_against_other_types() -> None:
    h = _h(hist.axis.Regular(2, 0, 1))
    with pytest.raises(AccumulatorError, match="hist.hist.Hist and int"):
        add(h, 1)
    with pytest.raises(AccumulatorError, match="classes differ"):
        add(h, bh.Histogram(bh.axis.Regular(2, 0, 1)))


def test_histograms_add_bin_contents() -> None:
    a = _h(hist.axis.Regular(4, 0, 1, name="x"), storage=hist.storage.Int64())
    b = a.copy()
    a.fill([0.1, 0.1, 0.9])
    b.fill([0.1, 0.6])
    total = add(a, b)
    assert total.values(flow=True).tolist() == [0, 3, 0, 1, 1, 0]
    assert a.sum() == 3 and b.sum() == 2
