"""HTTP route templates as the Functions host (ASP.NET Core routing) understands them.

The host turns every `httpTrigger` route into an ASP.NET Core route template and adds them to one
route table in the order of the functions' names (ordinal, ignore case); a request goes to the
*first* route that matches, its HTTP method constraint included. There is no "most specific wins":
a function named `FileServer` with `{*path}` answers `api/rooms/x/messages` before `History` is even
tried (azure-functions-host `FunctionMetadataManager.cs` orders by name, `WebScriptHostHttpRoutesManager.cs`
maps in that order; azure-webjobs-sdk-extensions `WebJobsRouter.cs` takes the first match; see
docs/parity.md). This module re-implements the template subset:
literal segments (case-insensitive), parameters with inline constraints (`{x:int}`,
`{x:regex(...)}`, `{x:length(3,8)}`, ...), optional parameters (`{x?}`), defaults (`{x=v}`),
catch-alls (`{*rest}` / `{**rest}`) and multi-part segments (`{name}.{ext}`).
"""

from __future__ import annotations

import itertools
import math
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote


class RouteTemplateError(ValueError):
    """A route template the host cannot parse (the real host refuses to start on these too)."""


@dataclass(frozen=True)
class Parameter:
    name: str
    constraints: tuple[tuple[str, str | None], ...] = ()
    optional: bool = False
    catch_all: bool = False
    default: str | None = None


@dataclass(frozen=True)
class Literal:
    text: str


Part = Literal | Parameter


@dataclass(frozen=True)
class Segment:
    parts: tuple[Part, ...]

    @property
    def is_simple_literal(self) -> bool:
        return len(self.parts) == 1 and isinstance(self.parts[0], Literal)

    @property
    def single_parameter(self) -> Parameter | None:
        if len(self.parts) == 1 and isinstance(self.parts[0], Parameter):
            return self.parts[0]
        return None


def _split_segments(template: str) -> list[str]:
    """Split on `/` outside braces, so a regex constraint may contain a slash."""
    segments: list[str] = []
    depth = 0
    current: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch in "{}" and template[i : i + 2] in ("{{", "}}"):
            current.append(template[i : i + 2])
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "/" and depth == 0:
            segments.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    segments.append("".join(current))
    return segments


def _parse_constraints(spec: str) -> tuple[tuple[str, str | None], ...]:
    """`int:min(1):regex(^a:b$)` → ((int, None), (min, "1"), (regex, "^a:b$")); colons inside
    parentheses belong to the argument."""
    constraints: list[tuple[str, str | None]] = []
    i = 0
    while i < len(spec):
        m = re.match(r"[A-Za-z]+", spec[i:])
        if not m:
            raise RouteTemplateError(f"bad constraint in {spec!r}")
        name = m.group(0).lower()
        i += len(name)
        arg = None
        if i < len(spec) and spec[i] == "(":
            depth = 0
            j = i
            while j < len(spec):
                if spec[j] == "(":
                    depth += 1
                elif spec[j] == ")":
                    depth -= 1
                    if depth == 0 and (j + 1 == len(spec) or spec[j + 1] == ":"):
                        break
                j += 1
            else:
                raise RouteTemplateError(f"unclosed constraint argument in {spec!r}")
            arg = spec[i + 1 : j]
            i = j + 1
        if name not in CONSTRAINTS:
            raise RouteTemplateError(f"unknown route constraint {name!r}")
        constraints.append((name, arg))
        if i < len(spec):
            if spec[i] != ":":
                raise RouteTemplateError(f"bad constraint in {spec!r}")
            i += 1
    return tuple(constraints)


def _parse_parameter(body: str) -> Parameter:
    catch_all = False
    if body.startswith("**"):
        catch_all, body = True, body[2:]
    elif body.startswith("*"):
        catch_all, body = True, body[1:]
    m = re.match(r"([A-Za-z_][A-Za-z0-9_\-]*)", body)
    if not m:
        raise RouteTemplateError(f"bad route parameter {{{body}}}")
    name = m.group(1)
    rest = body[len(name) :]
    default = None
    optional = False
    constraints: tuple[tuple[str, str | None], ...] = ()
    if rest.endswith("?"):
        optional, rest = True, rest[:-1]
    eq = rest.find("=")
    # A default value comes after the constraints; an `=` inside a constraint argument is not one.
    if eq != -1 and rest.count("(", 0, eq) == rest.count(")", 0, eq):
        default = rest[eq + 1 :]
        rest = rest[:eq]
    if rest.startswith(":"):
        constraints = _parse_constraints(rest[1:])
    elif rest:
        raise RouteTemplateError(f"bad route parameter {{{body}}}")
    return Parameter(name, constraints, optional, catch_all, default)


def _parse_segment(text: str) -> Segment:
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        two = text[i : i + 2]
        if two in ("{{", "}}"):
            literal.append(two[0])
            i += 2
            continue
        if text[i] == "{":
            if literal:
                parts.append(Literal("".join(literal)))
                literal = []
            j = i + 1
            body: list[str] = []
            while j < len(text):
                if text[j : j + 2] in ("{{", "}}"):
                    body.append(text[j])
                    j += 2
                    continue
                if text[j] == "}":
                    break
                body.append(text[j])
                j += 1
            else:
                raise RouteTemplateError(f"unclosed '{{' in segment {text!r}")
            parts.append(_parse_parameter("".join(body)))
            i = j + 1
            continue
        if text[i] == "}":
            raise RouteTemplateError(f"unmatched '}}' in segment {text!r}")
        literal.append(text[i])
        i += 1
    if literal:
        parts.append(Literal("".join(literal)))
    for a, b in itertools.pairwise(parts):
        if isinstance(a, Parameter) and isinstance(b, Parameter):
            raise RouteTemplateError(f"two parameters without a literal between them in {text!r}")
    return Segment(tuple(parts))


# --- constraints -----------------------------------------------------------------------------

def _int_in(lo: int, hi: int) -> Callable[[str, str | None], bool]:
    def check(value: str, _arg: str | None) -> bool:
        if not re.fullmatch(r"[+-]?\d+", value.strip()):
            return False
        return lo <= int(value) <= hi

    return check


def _is_float(value: str, _arg: str | None) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _is_decimal(value: str, _arg: str | None) -> bool:
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


def _is_guid(value: str, _arg: str | None) -> bool:
    try:
        uuid.UUID(value.strip("{}()"))
        return True
    except ValueError:
        return False


def _is_datetime(value: str, _arg: str | None) -> bool:
    try:
        datetime.fromisoformat(value)
        return True
    except ValueError:
        return False


def _args(arg: str | None) -> list[int]:
    if arg is None:
        raise RouteTemplateError("constraint needs an argument")
    return [int(a) for a in arg.split(",")]


def _length(value: str, arg: str | None) -> bool:
    a = _args(arg)
    return len(value) == a[0] if len(a) == 1 else a[0] <= len(value) <= a[1]


def _number(value: str) -> int | None:
    return int(value) if re.fullmatch(r"[+-]?\d+", value) else None


def _min(value: str, arg: str | None) -> bool:
    n = _number(value)
    return n is not None and n >= _args(arg)[0]


def _max(value: str, arg: str | None) -> bool:
    n = _number(value)
    return n is not None and n <= _args(arg)[0]


def _range(value: str, arg: str | None) -> bool:
    n = _number(value)
    lo, hi = _args(arg)
    return n is not None and lo <= n <= hi


def _regex(value: str, arg: str | None) -> bool:
    # ASP.NET Core's RegexRouteConstraint is unanchored, case-insensitive and culture-invariant.
    return re.search(arg or "", value, re.IGNORECASE) is not None


CONSTRAINTS: dict[str, Callable[[str, str | None], bool]] = {
    "int": _int_in(-(2**31), 2**31 - 1),
    "long": _int_in(-(2**63), 2**63 - 1),
    "bool": lambda v, _a: v.lower() in ("true", "false"),
    "guid": _is_guid,
    "alpha": lambda v, _a: re.fullmatch(r"[A-Za-z]*", v) is not None,
    "float": _is_float,
    "double": _is_float,
    "decimal": _is_decimal,
    "datetime": _is_datetime,
    "length": _length,
    "minlength": lambda v, a: len(v) >= _args(a)[0],
    "maxlength": lambda v, a: len(v) <= _args(a)[0],
    "min": _min,
    "max": _max,
    "range": _range,
    "regex": _regex,
    "required": lambda v, _a: v != "",
    "nonfile": lambda v, _a: "." not in v.rsplit("/", 1)[-1],
    "file": lambda v, _a: "." in v.rsplit("/", 1)[-1],
}


def _satisfies(param: Parameter, value: str) -> bool:
    return all(CONSTRAINTS[name](value, arg) for name, arg in param.constraints)


# --- templates ---------------------------------------------------------------------------------

@dataclass
class RouteTemplate:
    """One parsed template; `match` returns route values or None."""

    text: str
    segments: list[Segment] = field(default_factory=list)

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        text = template.strip().strip("/")
        if text.startswith("~"):
            text = text[1:].lstrip("/")
        segments = [] if text == "" else [_parse_segment(s) for s in _split_segments(text)]
        names: set[str] = set()
        for index, seg in enumerate(segments):
            if any(s == "" for s in [p.text for p in seg.parts if isinstance(p, Literal)]) or not seg.parts:
                raise RouteTemplateError(f"empty segment in route {template!r}")
            for part in seg.parts:
                if isinstance(part, Parameter):
                    if part.name.lower() in names:
                        raise RouteTemplateError(f"parameter {part.name!r} appears twice in {template!r}")
                    names.add(part.name.lower())
                    if part.catch_all and (index != len(segments) - 1 or len(seg.parts) != 1):
                        raise RouteTemplateError(f"a catch-all must be the last segment in {template!r}")
        return cls(text=text, segments=segments)

    def sample_path(self) -> str:
        """A concrete path this template matches (without a leading slash): what a client of the
        route would send. Used to find routes that an earlier one shadows."""
        return "/".join(_sample_segment(seg) for seg in self.segments)

    def match(self, path_segments: Sequence[str]) -> dict[str, str] | None:
        """Match decoded path segments (no empty ones); returns route values by parameter name."""
        values: dict[str, str] = {}
        segs = self.segments
        for index, seg in enumerate(segs):
            param = seg.single_parameter
            if param is not None and param.catch_all:
                rest = "/".join(path_segments[index:])
                if rest == "":
                    if param.default is not None:
                        rest = param.default
                    else:
                        return values  # a catch-all matches nothing too, and then has no value
                if not _satisfies(param, rest):
                    return None
                values[param.name] = rest
                return values
            if index >= len(path_segments):
                # Missing trailing segments are fine only for optional or defaulted parameters.
                if param is None or not (param.optional or param.default is not None):
                    return None
                if param.default is not None:
                    values[param.name] = param.default
                continue
            value = path_segments[index]
            if param is not None:
                if not _satisfies(param, value):
                    return None
                values[param.name] = value
            elif seg.is_simple_literal:
                if value.lower() != seg.parts[0].text.lower():  # type: ignore[union-attr]
                    return None
            else:
                got = _match_complex(seg, value)
                if got is None:
                    return None
                values.update(got)
        if len(path_segments) > len(segs):
            return None
        return values


_SAMPLES = ("sample", "1", "true", "0f8fad5b-d9cb-469f-a165-70867728950e", "2024-01-01", "a.b", "abc")


def _sample_value(param: Parameter) -> str:
    if param.default is not None and _satisfies(param, param.default):
        return param.default
    for candidate in (f"{_SAMPLES[0]}/path",) * param.catch_all + _SAMPLES:
        try:
            if _satisfies(param, candidate):
                return candidate
        except (RouteTemplateError, ValueError):
            continue
    return _SAMPLES[0]


def _sample_segment(seg: Segment) -> str:
    return "".join(p.text if isinstance(p, Literal) else _sample_value(p) for p in seg.parts)


def _match_complex(seg: Segment, value: str) -> dict[str, str] | None:
    """A segment like `{name}.{ext}`: ASP.NET matches literals right to left, parameters take the
    rest; a regex with greedy-from-the-right semantics does the same."""
    pattern = []
    for part in seg.parts:
        if isinstance(part, Literal):
            pattern.append(re.escape(part.text))
        else:
            pattern.append(f"(?P<{_group(part.name)}>.+)")
    m = re.fullmatch("".join(pattern), value, re.IGNORECASE)
    if not m:
        return None
    out = {}
    for part in seg.parts:
        if isinstance(part, Parameter):
            v = m.group(_group(part.name))
            if not _satisfies(part, v):
                return None
            out[part.name] = v
    return out


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def split_path(raw_path: str) -> list[str]:
    """Split a raw (still percent-encoded) request path into decoded segments.

    Kestrel decodes the path except `%2F`, so an encoded slash stays inside one segment and stays
    encoded in the route value, exactly as in ASP.NET Core."""
    segments = [s for s in raw_path.split("?", 1)[0].split("/") if s != ""]
    return [unquote(re.sub("%2[Ff]", "%252F", s)) for s in segments]


@dataclass
class Route:
    template: RouteTemplate
    methods: frozenset[str] | None  # None = every method
    target: object


class Router:
    """The route table in the order routes were added; the first match wins, as `WebJobsRouter`.

    A route whose methods do not include the request's is skipped (ASP.NET's
    `HttpMethodRouteConstraint`) and the next one tried; when nothing matches the host answers 404,
    never 405."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._routes: list[Route] = list(routes)

    def add(self, route: Route) -> None:
        self._routes.append(route)

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        segments = split_path(raw_path)
        method = method.upper()
        for route in self._routes:
            if route.methods is not None and method not in route.methods:
                continue
            values = route.template.match(segments)
            if values is not None:
                return route, values
        return None

    def shadowing(self, route: Route) -> list[tuple[str, Route]]:
        """(method, earlier route) pairs where an earlier route takes a request meant for `route`:
        its sample path (`RouteTemplate.sample_path`) sent with that method matches the earlier one first."""
        path = "/" + route.template.sample_path()
        methods = sorted(route.methods) if route.methods is not None else ["GET", "POST"]
        found = []
        for method in methods:
            hit = self.match(method, path)
            if hit is not None and hit[0] is not route:
                found.append((method, hit[0]))
        return found
