"""Typed value classes that cost almost nothing to define.

``dataclasses.dataclass`` writes the source of ``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__`` and ``__delattr__`` for each class and compiles it (on
Debian's Python 3.11 about 0.25 ms a frozen class), and importing ``dataclasses`` imports
``inspect`` (about a tenth of what a dropped mail executes). m2r-deliver defines some
forty value classes in a process that lives for one mail; bench/README.md has the
measurements.

``@valueclass`` takes the arguments of ``@dataclass`` that this project uses (``frozen``,
``eq``, ``kw_only``), and ``field``, ``replace`` and ``asdict`` here those of
``dataclasses``. The methods are shared functions, written once below, that read the
class's fields. To mypy these names are ``dataclasses``' own, so it types and checks the
classes (frozen ones included) as dataclasses. At run time ``dataclasses.fields``,
``replace``, ``asdict`` and ``is_dataclass`` also work on them: the first use builds the
``dataclasses`` view of the fields. ``tests/test_valueclass.py`` holds the two side by side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["asdict", "field", "replace", "valueclass"]


class _Missing:
    """No default given."""

    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()
_SPEC = "__valueclass_spec__"


class _Field:
    """One declared field: what ``field(...)`` says, and its name once the class is made."""

    __slots__ = ("name", "type", "default", "default_factory", "init", "repr", "hash", "compare", "kw_only")

    def __init__(self, default: Any = _MISSING, default_factory: Any = _MISSING, init: bool = True,
                 repr: bool = True, hash: bool | None = None, compare: bool = True, kw_only: Any = _MISSING):
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name, self.type = "", ""
        self.default, self.default_factory, self.init, self.repr = default, default_factory, init, repr
        self.hash, self.compare, self.kw_only = hash, compare, kw_only


if TYPE_CHECKING:
    from dataclasses import asdict, field, replace
    from dataclasses import dataclass as valueclass
else:
    def valueclass(cls=None, /, *, frozen: bool = False, eq: bool = True, kw_only: bool = False):
        """``@valueclass`` or ``@valueclass(frozen=..., eq=..., kw_only=...)``, as ``@dataclass``."""
        def wrap(cls: type) -> type:
            return _make(cls, frozen=frozen, eq=eq, kw_only=kw_only)
        return wrap if cls is None else wrap(cls)

    def field(*, default=_MISSING, default_factory=_MISSING, init=True, repr=True, hash=None, compare=True,
              kw_only=_MISSING):
        """As ``dataclasses.field``."""
        return _Field(default, default_factory, init, repr, hash, compare, kw_only)

    def replace(obj, /, **changes):
        """As ``dataclasses.replace``: a copy of ``obj`` with ``changes``, through its ``__init__``."""
        spec = _spec_of(type(obj))
        for f in spec.fields:
            if not f.init:
                if f.name in changes:
                    raise ValueError(f"field {f.name} is declared with init=False, it cannot be specified "
                                     "with replace()")
            elif f.name not in changes:
                changes[f.name] = getattr(obj, f.name)
        return type(obj)(**changes)

    def asdict(obj):
        """As ``dataclasses.asdict``: the fields, value classes inside made dicts too."""
        return _plain(obj)


def _plain(obj: Any) -> Any:
    if hasattr(type(obj), _SPEC):
        return {f.name: _plain(getattr(obj, f.name)) for f in _spec_of(type(obj)).fields}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((_plain(k), _plain(v)) for k, v in obj.items())
    return obj


class _Spec:
    """What the shared methods need of one class, worked out once when it is made."""

    __slots__ = ("fields", "positional", "keyword", "unset", "shown", "compared", "hashed")

    def __init__(self, fields: tuple[_Field, ...]):
        self.fields = fields
        given = [f for f in fields if f.init]
        self.positional = tuple((f.name, f.default, f.default_factory) for f in given if not f.kw_only)
        self.keyword = tuple((f.name, f.default, f.default_factory) for f in given if f.kw_only)
        self.unset = tuple((f.name, f.default, f.default_factory) for f in fields if not f.init
                           and (f.default is not _MISSING or f.default_factory is not _MISSING))
        self.shown = tuple(f.name for f in fields if f.repr)
        self.compared = tuple(f.name for f in fields if f.compare)
        self.hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))


def _spec_of(cls: type) -> _Spec:
    spec = getattr(cls, _SPEC, None)
    if spec is None:
        raise TypeError(f"{cls.__qualname__} is not a value class")
    return spec


def _declared(cls: type, kw_only: bool) -> tuple[_Field, ...]:
    """The fields of ``cls``: its bases' first, in order, then its own annotations; a
    field declared again keeps its place and takes the new declaration."""
    found: dict[str, _Field] = {}
    for base in reversed(cls.__mro__[1:]):
        spec = base.__dict__.get(_SPEC)
        if spec is not None:
            found.update((f.name, f) for f in spec.fields)
    for name, kind in cls.__dict__.get("__annotations__", {}).items():
        if isinstance(kind, str) and kind.startswith(("ClassVar", "typing.ClassVar")):
            continue
        declared = cls.__dict__.get(name, _MISSING)
        made = declared if isinstance(declared, _Field) else _from_dataclasses(declared)
        made.name, made.type = name, kind
        if made.kw_only is _MISSING:
            made.kw_only = kw_only
        if isinstance(made.default, (list, dict, set)):
            raise ValueError(f"mutable default {type(made.default)} for field {name} is not allowed: "
                             "use default_factory")
        if made.default is _MISSING:
            if name in cls.__dict__:
                delattr(cls, name)
        else:
            setattr(cls, name, made.default)
        found[name] = made
    fields = tuple(found.values())
    defaulted = False
    for f in fields:
        if f.init and not f.kw_only:
            if f.default is _MISSING and f.default_factory is _MISSING and defaulted:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
            defaulted = defaulted or f.default is not _MISSING or f.default_factory is not _MISSING
    return fields


def _from_dataclasses(declared: Any) -> _Field:
    """A plain default, or what ``dataclasses.field(...)`` made, as one of our fields."""
    kind = type(declared)
    if kind.__module__ != "dataclasses" or kind.__name__ != "Field":
        return _Field(default=declared)

    def given(value: Any) -> Any:  # dataclasses.MISSING, without importing dataclasses
        return _MISSING if (type(value).__module__, type(value).__name__) == ("dataclasses", "_MISSING_TYPE") \
            else value

    return _Field(given(declared.default), given(declared.default_factory), declared.init, declared.repr,
                  declared.hash, declared.compare, given(declared.kw_only))


def _make(cls: type, *, frozen: bool, eq: bool, kw_only: bool) -> type:
    own = dict(cls.__dict__)
    spec = _Spec(_declared(cls, kw_only))
    setattr(cls, _SPEC, spec)
    cls.__dataclass_fields__ = _DataclassView(cls)  # type: ignore[attr-defined]

    def put(name: str, method: Any) -> None:
        if name not in own:  # a method the class writes itself is kept, as dataclasses does
            setattr(cls, name, method)

    put("__match_args__", tuple(name for name, _, _ in spec.positional))

    put("__init__", _init)
    put("__repr__", _repr)
    if eq:
        put("__eq__", _eq)
        explicit_hash = own.get("__hash__", _MISSING) not in (_MISSING, None) or (
            "__hash__" in own and "__eq__" not in own)
        if not explicit_hash:
            cls.__hash__ = _hash if frozen else None  # type: ignore[assignment]
    if frozen:
        put("__setattr__", _frozen_setattr)
        put("__delattr__", _frozen_delattr)
    return cls


class _DataclassView:
    """``__dataclass_fields__``, built on first use from the class's fields with
    ``dataclasses.field``, so that the ``dataclasses`` functions work on value classes
    without ``dataclasses`` being imported by every start."""

    def __init__(self, cls: type):
        self.cls = cls

    def __get__(self, obj: Any, owner: type | None = None) -> dict[str, Any]:
        import dataclasses

        view: dict[str, Any] = {}
        def given(value: Any) -> Any:
            return dataclasses.MISSING if value is _MISSING else value

        for f in getattr(self.cls, _SPEC).fields:
            made: Any = dataclasses.field(default=given(f.default), default_factory=given(f.default_factory),
                                          init=f.init, repr=f.repr, hash=f.hash, compare=f.compare, kw_only=f.kw_only)
            made.name, made.type = f.name, f.type
            made._field_type = dataclasses._FIELD  # type: ignore[attr-defined]  # the kind fields() keeps
            view[f.name] = made
        type.__setattr__(self.cls, "__dataclass_fields__", view)
        return view


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    spec: _Spec = getattr(type(self), _SPEC)
    name_of = type(self).__qualname__
    if len(args) > len(spec.positional):
        raise TypeError(f"{name_of}.__init__() takes {len(spec.positional) + 1} positional arguments "
                        f"but {len(args) + 1} were given")
    put = object.__setattr__
    for index, (name, default, factory) in enumerate(spec.positional):
        if index < len(args):
            if name in kwargs:
                raise TypeError(f"{name_of}.__init__() got multiple values for argument {name!r}")
            put(self, name, args[index])
        else:
            put(self, name, _argument(name_of, kwargs, name, default, factory))
    for name, default, factory in spec.keyword:
        put(self, name, _argument(name_of, kwargs, name, default, factory))
    if kwargs:
        raise TypeError(f"{name_of}.__init__() got an unexpected keyword argument {next(iter(kwargs))!r}")
    for name, default, factory in spec.unset:
        put(self, name, default if factory is _MISSING else factory())
    post_init = getattr(self, "__post_init__", None)
    if post_init is not None:
        post_init()


def _argument(name_of: str, kwargs: dict[str, Any], name: str, default: Any, factory: Any) -> Any:
    if name in kwargs:
        return kwargs.pop(name)
    if factory is not _MISSING:
        return factory()
    if default is not _MISSING:
        return default
    raise TypeError(f"{name_of}.__init__() missing 1 required argument: {name!r}")


def _values(self: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in names)


def _repr(self: Any) -> str:
    spec: _Spec = getattr(type(self), _SPEC)
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in spec.shown)
    return f"{type(self).__qualname__}({shown})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = getattr(type(self), _SPEC).compared
    return _values(self, names) == _values(other, names)


def _hash(self: Any) -> int:
    return hash(_values(self, getattr(type(self), _SPEC).hashed))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise _frozen_error()(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise _frozen_error()(f"cannot delete field {name!r}")


def _frozen_error() -> type[Exception]:
    from dataclasses import FrozenInstanceError
    return FrozenInstanceError
