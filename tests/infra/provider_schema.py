"""The azure-native provider's input schema, read from the SDK's generated types, and a walker over inputs.

Why: the provider drops input properties it does not know and does not check enum values, so a misspelled
key in a plain dict such as `site_config` never reaches ARM and a wrong enum value fails only at `pulumi up`
as an ARM 400 (pulumi/pulumi-azure-native `provider/pkg/convert/sdkInputsToRequestBody.go`:
`SdkInputsToRequestBody` copies only the schema's properties into the request body; a union takes the first
type whose shape fits). The SDK is generated from the same provider schema, so its `@pulumi.input_type`
classes carry, for each input, the wire name (`@pulumi.getter(name=...)`, kept by pulumi as the getter's
`_pulumi_name` attribute: `pulumi/_types.py`, `getter()` and `_py_properties()`) and the type (the getter's
return annotation, e.g. `pulumi.Input[Optional[Union[_builtins.str, 'RuntimeName']]]`, with enums as
`str, Enum` classes in `pulumi_azure_native/<module>/_enums.py`). Nothing is hand-copied.

Enum policy (strict): a value must equal one of the SDK enum's values exactly, case included. The SDK types
most enums as `Union[str, Enum]` (the ARM spec's `x-ms-enum: modelAsString: true`, which says the set may
grow, not that the service takes any string), and whether a resource provider compares enum strings
case-insensitively is its own choice, written nowhere in the schema; the spellings differ by provider
(`consistent` and `descending` in Cosmos DB, `python` and `blobContainer` in Web, `Tls12` vs `TLS1_2` in
Cosmos DB vs Storage). The SDK's exact spelling is the one rule right for all of them. A property whose API
really takes other strings must be named in `FREE_STRING`, with the reason.
"""

from __future__ import annotations

import builtins
import collections.abc
import enum
import functools
import importlib
import inspect
import re
import sys
import typing
from dataclasses import dataclass
from typing import Any, Union

import pulumi
from pulumi.runtime import rpc

PACKAGE = "pulumi_azure_native"

# Union[str, Enum] properties whose API takes strings outside the SDK enum, as (type token, wire path with
# list indices and map keys written `[]`); no value there is checked. Empty: every enum-typed value the
# program sends is one of the SDK's.
FREE_STRING: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class Scalar:
    """A string, number or bool (`name` is its Python type): no keys, but a dict or list here is wrong."""

    name: str


@dataclass(frozen=True)
class Anything:
    """`Any` (free-form JSON such as a template or a policy body): nothing to check."""


@dataclass(frozen=True)
class EnumOf:
    """An enum-typed value; `open` when the SDK also admits any string (`Union[str, Enum]`)."""

    names: tuple[str, ...]
    values: tuple[Any, ...]
    open: bool


@dataclass(frozen=True)
class Obj:
    """An `@pulumi.input_type` class: a dict whose keys must be its wire names."""

    cls: type


@dataclass(frozen=True)
class Seq:
    item: Shape


@dataclass(frozen=True)
class Map:
    value: Shape


@dataclass(frozen=True)
class AnyOf:
    """A union of object types (a discriminated type): the value must fit one of them."""

    options: tuple[Shape, ...]


Shape = Union[Scalar, Anything, EnumOf, Obj, Seq, Map, AnyOf]  # noqa: UP007 (a runtime alias used before 3.12)


def resource_args(token: str) -> type:
    """The `<Name>Args` input type of the SDK resource class for a token like `azure-native:web:WebApp`.

    The module is the token's middle part (`web`, or `web/v20240401` → `web.v20240401`); the class is checked
    to register exactly this token, so a renamed or moved class cannot be matched by accident.
    """
    provider, module, name = token.split(":")
    if provider != "azure-native":
        raise ValueError(f"{token} is not an azure-native resource")
    mod = importlib.import_module(f"{PACKAGE}.{module.replace('/', '.')}")
    cls = getattr(mod, name, None)
    args = getattr(mod, f"{name}Args", None)
    if cls is None or args is None or not pulumi._types.is_input_type(args):
        raise LookupError(f"{token}: no {mod.__name__}.{name} with an input type {name}Args")
    if f"'{token}'" not in inspect.getsource(cls):
        raise LookupError(f"{token}: {mod.__name__}.{name} registers another type token")
    return args


@functools.cache
def fields(cls: type) -> dict[str, Shape]:
    """Wire name → shape of every input of an `@pulumi.input_type` class (its `pulumi.getter` properties)."""
    out: dict[str, Shape] = {}
    for base in reversed(cls.__mro__):
        for attr in vars(base).values():
            if isinstance(attr, builtins.property) and hasattr(attr.fget, "_pulumi_name"):
                out[attr.fget._pulumi_name] = shape_of(_return_type(attr.fget))
    return out


def _return_type(fget: Any) -> Any:
    """The getter's resolved return annotation. The generated modules quote their own types ('SiteConfigArgs',
    'RuntimeName'); `pulumi.Input` itself holds the forward reference "Output[T]" (pulumi/output.py), so
    `Output` and `T` are supplied as pulumi does in `_types._types_from_annotations`."""
    globalns = vars(sys.modules[fget.__module__])
    return typing.get_type_hints(fget, globalns=globalns, localns={"Output": pulumi.Output, "T": type(None)})[
        "return"
    ]


def _is_wrapper(t: Any) -> bool:
    """The members of `pulumi.Input[X]` and `Optional[X]` that are not X: Awaitable[X], Output[X], None."""
    origin = typing.get_origin(t) or t
    return t is type(None) or origin is collections.abc.Awaitable or origin is pulumi.Output


def shape_of(t: Any) -> Shape:
    """The shape of a resolved annotation, unwrapping Input/Optional/Union, Sequence, Mapping and enums."""
    origin = typing.get_origin(t)
    if origin is Union:
        return _union([m for m in typing.get_args(t) if not _is_wrapper(m)])
    if origin is collections.abc.Sequence:
        return Seq(shape_of(typing.get_args(t)[0]))
    if origin is collections.abc.Mapping:
        return Map(shape_of(typing.get_args(t)[1]))
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return EnumOf((t.__name__,), tuple(e.value for e in t), open=False)
    if isinstance(t, type) and pulumi._types.is_input_type(t):
        return Obj(t)
    return Anything() if t is Any else Scalar(getattr(t, "__name__", str(t)))


def _union(members: list[Any]) -> Shape:
    """`Union[str, E]` is an open enum, `Union[E1, E2]` one enum, `Union[A, B]` of input types a choice."""
    shapes = [shape_of(m) for m in members]
    enums = [s for s in shapes if isinstance(s, EnumOf)]
    if enums and len(enums) + members.count(str) == len(members):
        names = tuple(n for e in enums for n in e.names)
        values = tuple(v for e in enums for v in e.values)
        return EnumOf(names, values, open=str in members)
    distinct = tuple(dict.fromkeys(shapes))
    return distinct[0] if len(distinct) == 1 else AnyOf(distinct)


def check_resource(token: str, name: str, inputs: dict[str, Any]) -> list[str]:
    """Every problem in a resource's recorded (wire-name) inputs, each naming the resource and the path."""
    return [f"{token} {name}: {p}" for p in walk(inputs, Obj(resource_args(token)), "", token)]


def walk(value: Any, shape: Shape, path: str, token: str = "") -> list[str]:
    """Problems of `value` against `shape`, recursively through objects, list items and map values."""
    value = _unsecret(value)
    if value is None or value == rpc.UNKNOWN or isinstance(shape, Anything):
        return []
    if isinstance(shape, Scalar):
        return _check_container(value, (str, int, float, bool), shape.name, path)
    if isinstance(shape, EnumOf):
        return _check_enum(value, shape, path, token)
    if isinstance(shape, AnyOf):
        return _check_any_of(value, shape, path, token)
    if isinstance(shape, Obj):
        return _check_object(value, shape.cls, path, token)
    if isinstance(shape, Seq):
        return _check_container(value, list, "a list", path) or [
            p for i, item in enumerate(value) for p in walk(item, shape.item, f"{path}[{i}]", token)
        ]
    return _check_container(value, dict, "a map", path) or [
        p for k, v in value.items() for p in walk(v, shape.value, f"{path}[{k!r}]", token)
    ]


def _unsecret(value: Any) -> Any:
    """A secret input is recorded as pulumi's envelope `{<sig key>: <secret sig>, "value": v}` (the harness
    deserialises without unwrapping, pulumi/runtime/rpc.py); the provider receives v, so v is checked."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return value.get("value")
    return value


def _check_any_of(value: Any, shape: AnyOf, path: str, token: str) -> list[str]:
    """Fine if the value fits one option; else the problems of the options it comes closest to fitting."""
    tries = [walk(value, option, path, token) for option in shape.options]
    fewest = min(len(t) for t in tries)
    return [] if fewest == 0 else [p for t in tries if len(t) == fewest for p in t]


def _check_container(value: Any, kind: type | tuple[type, ...], expected: str, path: str) -> list[str]:
    """A dict where a string is expected (or the reverse) would also be dropped or refused: say so."""
    if isinstance(value, kind):
        return []
    return [f"{path or '(inputs)'} is a {type(value).__name__}, but the SDK types it as {expected}"]


def _check_object(value: Any, cls: type, path: str, token: str) -> list[str]:
    if not isinstance(value, dict):
        return _check_container(value, dict, cls.__name__, path)
    known = fields(cls)
    problems: list[str] = []
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if key not in known:
            problems.append(f"{where} is not an input of {cls.__name__} ({cls.__module__})")
        else:
            problems += walk(item, known[key], where, token)
    return problems


def _check_enum(value: Any, shape: EnumOf, path: str, token: str) -> list[str]:
    if value in shape.values or (shape.open and (token, _generic(path)) in FREE_STRING):
        return []
    allowed = ", ".join(repr(v) for v in shape.values)
    return [f"{path} = {value!r} is not a value of {'|'.join(shape.names)} (exact case: {allowed})"]


def _generic(path: str) -> str:
    """`features[1].value` → `features[].value`: FREE_STRING names a property, not one item of it."""
    return re.sub(r"\[[^]]*\]", "[]", path)
