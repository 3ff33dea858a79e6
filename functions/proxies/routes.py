"""Route templates as the Functions host understands them: literals, `{name}`, `{name?}`, `{name:constraint}`,
and a final catch-all `{*name}`. Used for the app's own functions and for proxies.json, so both agree."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(\?)?(?::[^}]*)?\}")


@dataclass(frozen=True)
class Segment:
    literal: str | None = None  # lower-cased literal; None for a parameter
    name: str | None = None
    optional: bool = False
    catch_all: bool = False


@dataclass(frozen=True)
class RouteTemplate:
    """A parsed route; `match` returns the route values or None. Literals compare case-insensitively like
    ASP.NET."""

    template: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        segments: list[Segment] = []
        parts = [p for p in template.strip().strip("/").split("/") if p != ""]
        for i, part in enumerate(parts):
            m = _PARAM.fullmatch(part)
            if m:
                catch_all = m.group(1) == "*"
                if catch_all and i != len(parts) - 1:
                    raise ValueError(f"route {template!r}: a catch-all must be the last segment")
                segments.append(Segment(name=m.group(2), optional=bool(m.group(3)), catch_all=catch_all))
            elif "{" in part or "}" in part:
                raise ValueError(f"route {template!r}: unsupported segment {part!r}")
            else:
                segments.append(Segment(literal=part.lower()))
        return cls(template, tuple(segments))

    def match(self, path: str) -> dict[str, str] | None:
        parts = path.strip("/").split("/") if path.strip("/") else []
        values: dict[str, str] = {}
        for i, seg in enumerate(self.segments):
            if seg.catch_all:
                values[seg.name or ""] = "/".join(parts[i:])
                return values
            if i >= len(parts):
                if seg.optional:
                    continue
                return None
            if seg.literal is not None:
                if parts[i].lower() != seg.literal:
                    return None
            else:
                values[seg.name or ""] = parts[i]
        return values if len(parts) <= len(self.segments) else None

    def precedence(self) -> tuple[int, ...]:
        """Sort key: literal segments beat parameters, which beat the catch-all (ASP.NET Core route
        precedence)."""
        return tuple(0 if s.literal is not None else 2 if s.catch_all else 1 for s in self.segments)

    def expand(self, values: dict[str, str]) -> str:
        return "/".join(
            s.literal if s.literal is not None else values.get(s.name or "", "") for s in self.segments
        )
