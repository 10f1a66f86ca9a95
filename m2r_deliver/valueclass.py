"""Typed value classes that cost almost nothing to define.

``dataclasses.dataclass`` writes the source of ``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__`` and ``__delattr__`` for each class and compiles it: on
Debian's Python 3.11 about 0.25 ms a frozen class, and m2r-deliver defines some forty of
them in a process that lives for one mail (bench/README.md has the measurement).

``@valueclass`` takes the same arguments as ``@dataclass`` (the ones this project uses:
``frozen``, ``eq``, ``kw_only``). The class it makes is a real dataclass, so
``dataclasses.fields``, ``replace``, ``asdict`` and ``field(...)`` work on it; only the
methods are shared functions, written once below, that read the class's fields instead of
being compiled for it. mypy sees ``dataclasses.dataclass`` itself, so it types and checks
the classes (frozen ones included) exactly as before; ``tests/test_valueclass.py`` holds the
two side by side.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

__all__ = ["valueclass"]

_MISSING = dataclasses.MISSING
_SPEC = "__value_spec__"

if TYPE_CHECKING:
    from dataclasses import dataclass as valueclass
else:
    def valueclass(cls=None, /, *, frozen: bool = False, eq: bool = True, kw_only: bool = False):
        """``@valueclass`` or ``@valueclass(frozen=..., eq=..., kw_only=...)``, as ``@dataclass``."""
        def wrap(cls: type) -> type:
            return _make(cls, frozen=frozen, eq=eq, kw_only=kw_only)
        return wrap if cls is None else wrap(cls)


class _Spec:
    """What the shared methods need of one class, worked out once when it is defined."""

    __slots__ = ("positional", "keyword", "unset", "shown", "compared", "hashed")

    def __init__(self, fields: tuple[dataclasses.Field, ...]):
        given = [f for f in fields if f.init]
        self.positional = tuple((f.name, f.default, f.default_factory) for f in given if not f.kw_only)
        self.keyword = tuple((f.name, f.default, f.default_factory) for f in given if f.kw_only)
        self.unset = tuple((f.name, f.default, f.default_factory) for f in fields if not f.init
                           and (f.default is not _MISSING or f.default_factory is not _MISSING))
        self.shown = tuple(f.name for f in fields if f.repr)
        self.compared = tuple(f.name for f in fields if f.compare)
        self.hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))


def _make(cls: type, *, frozen: bool, eq: bool, kw_only: bool) -> type:
    if not cls.__dict__.get("__doc__"):
        cls.__doc__ = cls.__name__  # else dataclasses builds one with inspect.signature
    own = dict(cls.__dict__)
    made: type = dataclasses.dataclass(cls, init=False, repr=False, eq=False, kw_only=kw_only)
    setattr(made, _SPEC, _Spec(dataclasses.fields(made)))

    def put(name: str, method: Any) -> None:
        if name not in own:  # a method the class writes itself is kept, as dataclasses does
            setattr(made, name, method)

    put("__init__", _init)
    put("__repr__", _repr)
    if eq:
        put("__eq__", _eq)
        explicit_hash = own.get("__hash__", _MISSING) not in (_MISSING, None) or (
            "__hash__" in own and "__eq__" not in own)
        if not explicit_hash:
            made.__hash__ = _hash if frozen else None  # type: ignore[assignment]
    if frozen:
        put("__setattr__", _frozen_setattr)
        put("__delattr__", _frozen_delattr)
    return made


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
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
