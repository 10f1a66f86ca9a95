"""``@valueclass`` behaves as ``@dataclass`` with the same arguments: each shape of class
the project writes is built both ways and held side by side (construction, defaults,
wrong arguments, repr, equality, hashing, frozenness, replace, asdict, __post_init__,
inheritance), with valueclass's ``field`` and with ``dataclasses.field``; ``dataclasses``'
functions work on value classes. And no class of the package compiles dataclass methods
at start-up."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import pytest

import m2r_deliver
from m2r_deliver import valueclass as valueclass_module
from m2r_deliver.valueclass import valueclass


def shapes(decorate, field):
    """The shapes of class in the package, each decorated with ``decorate``, their fields
    declared with ``field``."""

    @decorate(frozen=True)
    class Frozen:
        """Frozen, compared, hashed."""

        a: int
        b: str = "b"
        c: tuple = ()
        d: list = field(default_factory=list, compare=False, repr=False)

    @decorate(frozen=True, eq=False)
    class FrozenUncompared:
        """Frozen, compared by identity."""

        a: int
        b: int = 2

    @decorate(frozen=True, kw_only=True)
    class KeywordOnly:
        """Keyword arguments only."""

        a: int
        b: int = 2

    @decorate
    class Mutable:
        """Not frozen, compared, not hashable."""

        a: int
        b: dict = field(default_factory=dict)
        c: int = field(default=7, init=False)

    @decorate(eq=False)
    class Later:
        """Fills a field in __post_init__."""

        a: int
        doubled: int = field(default=0, init=False)

        def __post_init__(self):
            self.doubled = 2 * self.a

    @decorate(frozen=True)
    class Base:
        """A base with a default."""

        a: int
        b: int = 1

    @decorate(frozen=True)
    class Derived(Base):
        """Adds a field after the base's."""

        c: int = 3

    @decorate(frozen=True)
    class OwnRepr:
        """Writes its own __repr__ and __hash__."""

        a: int

        def __repr__(self):
            return f"<{self.a}>"

        def __hash__(self):
            return 42

    return dict(Frozen=Frozen, FrozenUncompared=FrozenUncompared, KeywordOnly=KeywordOnly, Mutable=Mutable,
                Later=Later, Base=Base, Derived=Derived, OwnRepr=OwnRepr)


THEIRS = shapes(dataclasses.dataclass, dataclasses.field)
OURS = shapes(valueclass, valueclass_module.field)
#: dataclasses.field written in a value class (the runtime need not import dataclasses for it)
MIXED = shapes(valueclass, dataclasses.field)

CALLS = {
    "Frozen": [((1,), {}), ((1, "x", (2,)), {}), ((), {"a": 1, "c": (3,)}), ((), {}), ((1, 2, 3, 4, 5), {}),
               ((1,), {"a": 2}), ((1,), {"e": 2}), ((1,), {"d": [1]})],
    "FrozenUncompared": [((1,), {}), ((1, 5), {}), ((), {"b": 1})],
    "KeywordOnly": [((), {"a": 1}), ((), {"a": 1, "b": 5}), ((1,), {}), ((), {})],
    "Mutable": [((1,), {}), ((1, {"k": 1}), {}), ((1,), {"c": 2})],
    "Later": [((4,), {}), ((), {"a": 5}), ((), {"doubled": 1, "a": 1})],
    "Base": [((1,), {}), ((1, 2), {})],
    "Derived": [((1,), {}), ((1, 2, 4), {}), ((), {"c": 9, "a": 0})],
    "OwnRepr": [((1,), {})],
}


def build(classes, name, args, kwargs):
    try:
        return classes[name](*args, **kwargs), None
    except TypeError as exc:
        return None, exc


def state(obj):
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)} | (
        {"doubled": obj.doubled} if hasattr(obj, "doubled") else {})


@pytest.mark.parametrize("ours_made", [OURS, MIXED], ids=["field", "dataclasses.field"])
@pytest.mark.parametrize("name,args,kwargs", [(n, a, k) for n, calls in CALLS.items() for a, k in calls])
def test_construction_as_dataclass(ours_made, name, args, kwargs):
    theirs, their_error = build(THEIRS, name, args, kwargs)
    ours, our_error = build(ours_made, name, args, kwargs)
    assert (their_error is None) == (our_error is None), (their_error, our_error)
    if theirs is None:
        return
    assert state(ours) == state(theirs)
    assert repr(ours) == repr(theirs)
    assert dataclasses.asdict(ours) == dataclasses.asdict(theirs) == valueclass_module.asdict(ours)
    assert [(f.name, f.init, f.repr, f.compare, f.kw_only) for f in dataclasses.fields(ours)] == [
        (f.name, f.init, f.repr, f.compare, f.kw_only) for f in dataclasses.fields(theirs)]
    assert dataclasses.is_dataclass(ours)


@pytest.mark.parametrize("name", list(CALLS))
def test_equality_and_hash_as_dataclass(name):
    args, kwargs = CALLS[name][0]
    for classes in (THEIRS, OURS):
        one, two = classes[name](*args, **kwargs), classes[name](*args, **kwargs)
        theirs_one, theirs_two = THEIRS[name](*args, **kwargs), THEIRS[name](*args, **kwargs)
        assert (one == two) == (theirs_one == theirs_two)
        assert (one == object()) is False
        hashable = type(theirs_one).__hash__ is not None
        assert (type(one).__hash__ is not None) == hashable
        if hashable and type(theirs_one).__hash__ is not object.__hash__:
            assert (hash(one) == hash(two)) == (hash(theirs_one) == hash(theirs_two))


def test_compare_false_fields_are_not_compared():
    one, two = OURS["Frozen"](1, d=[1]), OURS["Frozen"](1, d=[2])
    assert one == two and hash(one) == hash(two)
    assert OURS["Frozen"](1) != OURS["Frozen"](2)


@pytest.mark.parametrize("name", ["Frozen", "FrozenUncompared", "KeywordOnly", "Derived"])
def test_frozen_as_dataclass(name):
    args, kwargs = CALLS[name][0]
    for classes in (THEIRS, OURS):
        obj = classes[name](*args, **kwargs)
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.a = 5
        with pytest.raises(dataclasses.FrozenInstanceError):
            del obj.a
        assert obj.a == THEIRS[name](*args, **kwargs).a


def test_mutable_and_post_init_as_dataclass():
    ours = OURS["Mutable"](1)
    ours.a = 2
    assert ours.a == 2 and ours.c == 7
    assert OURS["Mutable"](1).b is not OURS["Mutable"](1).b  # each gets its own dict
    assert OURS["Later"](4).doubled == THEIRS["Later"](4).doubled == 8


@pytest.mark.parametrize("replace", [dataclasses.replace, valueclass_module.replace], ids=["dataclasses", "ours"])
def test_replace_as_dataclass(replace):
    for classes in (THEIRS, OURS) if replace is dataclasses.replace else (OURS,):
        obj = classes["Derived"](1)
        changed = replace(obj, c=5)
        assert (changed.a, changed.b, changed.c) == (1, 1, 5) and type(changed) is type(obj)
        assert replace(classes["Later"](3), a=4).doubled == 8  # through __init__ and __post_init__
        with pytest.raises((ValueError, TypeError)):  # TypeError from Python 3.13 on
            replace(classes["Mutable"](1), c=3)  # not an __init__ field


def test_asdict_goes_into_nested_values():
    outer = OURS["Derived"](1, c=(OURS["Base"](2), [OURS["Base"](3)]))
    expected = {"a": 1, "b": 1, "c": ({"a": 2, "b": 1}, [{"a": 3, "b": 1}])}
    assert valueclass_module.asdict(outer) == expected
    assert dataclasses.asdict(THEIRS["Derived"](1, c=(THEIRS["Base"](2), [THEIRS["Base"](3)]))) == expected


def test_declarations_dataclasses_refuses_are_refused():
    for decorate, field in ((dataclasses.dataclass, dataclasses.field), (valueclass, valueclass_module.field)):
        with pytest.raises(TypeError):
            @decorate
            class Misordered:
                a: int = 1
                b: int
        with pytest.raises(ValueError):
            @decorate
            class SharedDefault:
                a: list = []
        with pytest.raises(ValueError):
            field(default=1, default_factory=int)


def test_methods_the_class_writes_are_kept():
    ours, theirs = OURS["OwnRepr"](1), THEIRS["OwnRepr"](1)
    assert repr(ours) == repr(theirs) == "<1>"
    assert hash(ours) == hash(theirs) == 42


def all_package_classes():
    for module in pkgutil.walk_packages(m2r_deliver.__path__, "m2r_deliver."):
        if module.name.endswith(".__main__"):
            continue
        loaded = importlib.import_module(module.name)
        for value in vars(loaded).values():
            if isinstance(value, type) and value.__module__ == loaded.__name__ and dataclasses.is_dataclass(value):
                yield value


def test_no_class_in_the_package_compiles_dataclass_methods():
    """Each of them uses the shared methods: a plain @dataclass would compile its own at
    every start (bench/README.md measures what that costs)."""
    classes = list(all_package_classes())
    assert len(classes) > 40
    compiled = [cls.__qualname__ for cls in classes if cls.__init__ is not valueclass_module._init
                and "__init__" not in vars(cls)]
    assert compiled == []
