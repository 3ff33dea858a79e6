"""Compiles a parsed query into Python closures and runs it over documents with Cosmos semantics.

Why closures: a query is parsed and compiled once (cached by text) and then evaluated per document;
closures avoid re-walking the tree for every row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cmp_to_key
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import bad_request
from .functions import AGGREGATES, FUNCTIONS
from .values import (
    RANK_ARRAY,
    RANK_NUMBER,
    RANK_OBJECT,
    RANK_UNDEFINED,
    UNDEF,
    canonical,
    compare,
    equals,
    is_number,
    normalise_number,
    rank,
    sort_key,
)

Env = dict[str, Any]
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}  # `a < b` is `b > a`
Expr = Callable[[Env, dict[str, Any]], Any]

_PARSER = Lark(
    (Path(__file__).with_name("grammar.lark")).read_text(),
    parser="lalr",
    maybe_placeholders=False,
    cache=True,  # LALR tables cached in the temp dir (keyed by grammar + lark version): 122 → 10 ms per start
)


def parse(text: str) -> Tree:
    try:
        return _PARSER.parse(text)
    except UnexpectedToken as exc:
        tok = exc.token
        if tok.type == "$END":
            raise bad_request(f"Syntax error: the query ends unexpectedly after '{text[-30:]}'.") from None
        start = tok.start_pos or 0
        excerpt = text[max(0, start - 20) : start + 10]
        raise bad_request(
            f"Syntax error, incorrect syntax near '{tok}' at line {tok.line}, column {tok.column} "
            f"(in '…{excerpt}…'): this construct is not supported by the emulator's query grammar."
        ) from None
    except UnexpectedCharacters as exc:
        raise bad_request(
            f"Syntax error, unexpected character '{text[exc.pos_in_stream]}' "
            f"at line {exc.line}, column {exc.column}."
        ) from None
    except (UnexpectedEOF, UnexpectedInput) as exc:
        raise bad_request(f"Syntax error in query: {exc}") from None


def _kids(tree: Tree) -> list[Any]:
    """Children without keyword tokens (named keyword terminals are kept by lark)."""
    return [c for c in tree.children if not (isinstance(c, Token) and c.type not in _VALUE_TOKENS)]


_VALUE_TOKENS = {
    "NAME",
    "INT",
    "DECIMAL",
    "STRING",
    "PARAM",
    "COMP_OP",
    "ADD_OP",
    "MUL_OP",
    "ASC",
    "DESC",
    "NOT",
}


def _string_literal(raw: str) -> str:
    body = raw[1:-1]
    out = []
    i = 0
    escapes = {
        "n": "\n",
        "t": "\t",
        "r": "\r",
        "b": "\b",
        "f": "\f",
        "/": "/",
        "\\": "\\",
        '"': '"',
        "'": "'",
    }
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and i + 5 < len(body) + 0:
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(escapes.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


_CONSTANT_KINDS = {
    "int_lit",
    "float_lit",
    "str_lit",
    "true_lit",
    "false_lit",
    "null_lit",
    "undefined_lit",
    "param",
}


def _hash_key(v: Any) -> tuple[int, Any]:
    """Key under which two values are equal exactly when Cosmos ``=`` says true (undefined never is)."""
    r = rank(v)
    if r == RANK_NUMBER:
        return (r, float(v))
    if r in (RANK_ARRAY, RANK_OBJECT):
        return (r, canonical(v))
    if r == RANK_UNDEFINED:
        return (r, object())  # matches nothing
    return (r, v)


def _truth(v: Any) -> Any:
    return v if isinstance(v, bool) else UNDEF


def _connective(a: Expr, b: Expr, decisive: bool) -> Expr:
    """AND (decisive False) and OR (decisive True) in the service's three-valued logic: either side being
    the decisive value decides, both sides the other boolean give that boolean, anything else is undefined."""
    other = not decisive

    def connective(e: Env, p: dict[str, Any]) -> Any:
        x = _truth(a(e, p))
        if x is decisive:
            return decisive
        y = _truth(b(e, p))
        if y is decisive:
            return decisive
        return other if x is other and y is other else UNDEF

    return connective


@dataclass
class _Aggregate:
    name: str
    arg: Expr
    alias: str | None = None


@dataclass
class CompiledQuery:
    """A query ready to run: filters, sorts, projects, pages over a list of documents."""

    text: str
    aliases: list[str]
    joins: list[tuple[str, Expr]]
    where: Expr | None
    order: list[tuple[Expr, bool]]
    project: Callable[[Env, dict[str, Any]], Any] | None
    aggregates: list[_Aggregate] = field(default_factory=list)
    aggregate_value: bool = False
    distinct: bool = False
    top: Expr | None = None
    offset: Expr | None = None
    limit: Expr | None = None
    star: bool = False
    # ORDER BY as (property path from the FROM alias, descending) when every item is a plain path of
    # string keys (``c.a.b``, ``c["x y"]``) and nothing (JOIN, DISTINCT, aggregate) needs the whole set:
    # then the store may feed rows already in index order (see ``run_ordered``). None otherwise.
    order_paths: list[tuple[tuple[str, ...], bool]] | None = None
    # Top-level AND conjuncts comparing the first ORDER BY path with a parameter or literal, as
    # (operator with the path on the left, value): ``c.createdAt > @after`` → (">", <@after>). The store
    # seeks the ORDER BY index there instead of reading the partition from its first row; the WHERE is
    # still evaluated on every row it reads, so a seek only ever skips rows the WHERE would refuse.
    order_seeks: list[tuple[str, Expr]] = field(default_factory=list)

    @property
    def streamable(self) -> bool:
        """Each document's results depend on that document alone: a page can resume after the last
        document read, instead of recomputing the whole result (queries.py `QueryEngine._stream_page`)."""
        return not (
            self.order
            or self.aggregates
            or self.distinct
            or self.joins
            or self.top is not None
            or self.offset is not None
            or self.limit is not None
        )

    def _count(self, expr: Expr | None, params: dict[str, Any], what: str) -> int | None:
        if expr is None:
            return None
        value = expr({}, params)
        if not is_number(value) or int(value) != value or value < 0:
            raise bad_request(f"The {what} value must be a non-negative integer; got {value!r}.")
        return int(value)

    def _rows(self, docs: list[Any]) -> list[Env]:
        alias = self.aliases[0] if self.aliases else None
        rows: list[Env] = [{alias: d} if alias else {} for d in docs] if alias else [{}]
        for name, source in self.joins:
            expanded = []
            for row in rows:
                arr = source(row, {})
                if isinstance(arr, list):
                    for el in arr:
                        expanded.append({**row, name: el})
            rows = expanded
        return rows

    def execute(self, docs: list[Any], params: dict[str, Any], *, cross_partition: bool = False) -> list[Any]:
        """Run over ``docs``. ``cross_partition``: an undefined ``SELECT VALUE AGG()`` reads as ``[null]``,
        which is what the SDK yields from a real account, where it merges per-partition aggregates itself."""
        rows = self._rows(docs)
        if self.where is not None:
            where = self.where
            rows = [r for r in rows if where(r, params) is True]
        if self.aggregates:
            return self._aggregate(rows, params, cross_partition)
        if self.order:
            rows = self._sorted(rows, params)
        results: list[Any] = []
        project = self.project
        for r in rows:
            value = project(r, params) if project else r
            if value is UNDEF:
                continue
            results.append(value)
        return self._finish(results, params)

    def _sorted(self, rows: list[Env], params: dict[str, Any]) -> list[Env]:
        """Stable sort by the ORDER BY keys (ties keep the input order, i.e. insertion order)."""
        keys = self.order

        def cmp(a: tuple[list[Any], Env], b: tuple[list[Any], Env]) -> int:
            for (_, desc), ka, kb in zip(keys, a[0], b[0], strict=True):
                if ka != kb:
                    r = -1 if ka < kb else 1
                    return -r if desc else r
            return 0

        decorated = [([sort_key(e(r, params)) for e, _ in keys], r) for r in rows]
        decorated.sort(key=cmp_to_key(cmp))
        return [r for _, r in decorated]

    def result_bound(self, params: dict[str, Any], page_cap: int | None) -> int | None:
        """How many ordered, projected results ``_finish`` can look at, given TOP / OFFSET LIMIT and the
        most the caller's page needs (``page_cap``); None = all of them."""
        offset = self._count(self.offset, params, "OFFSET") or 0
        caps = [
            n
            for n in (
                self._count(self.limit, params, "LIMIT"),
                self._count(self.top, params, "TOP"),
                page_cap,
            )
            if n is not None
        ]
        return offset + min(caps) if caps else None

    def run_ordered(
        self, groups: Iterable[list[dict[str, Any]]], params: dict[str, Any], bound: int | None
    ) -> list[Any]:
        """Same answer as ``execute`` over documents that arrive already ordered by the ORDER BY paths,
        in groups whose index keys tie (each group in insertion order). A group is re-sorted with the exact
        keys (the index key is only monotone: e.g. huge integers round, arrays/objects all tie), then
        filtered and projected; reading stops once ``bound`` results exist."""
        alias = self.aliases[0]
        where, project = self.where, self.project
        results: list[Any] = []
        for group in groups:
            rows: list[Env] = [{alias: d} for d in group]
            if where is not None:
                rows = [r for r in rows if where(r, params) is True]
            if len(rows) > 1:
                rows = self._sorted(rows, params)
            for r in rows:
                value = project(r, params) if project else r
                if value is UNDEF:
                    continue
                results.append(value)
                if bound is not None and len(results) >= bound:
                    return self._finish(results, params)
        return self._finish(results, params)

    def _finish(self, results: list[Any], params: dict[str, Any]) -> list[Any]:
        if self.distinct:
            seen: set[str] = set()
            unique = []
            for v in results:
                k = canonical(v)
                if k not in seen:
                    seen.add(k)
                    unique.append(v)
            results = unique
        offset = self._count(self.offset, params, "OFFSET")
        limit = self._count(self.limit, params, "LIMIT")
        if offset is not None:
            results = results[offset : offset + (limit if limit is not None else len(results))]
        top = self._count(self.top, params, "TOP")
        if top is not None:
            results = results[:top]
        return results

    def _aggregate(self, rows: list[Env], params: dict[str, Any], cross_partition: bool) -> list[Any]:
        values = [_run_aggregate(a.name, [a.arg(r, params) for r in rows]) for a in self.aggregates]
        if self.aggregate_value:
            if values[0] is UNDEF:
                out: list[Any] = [None] if cross_partition else []
            else:
                out = [values[0]]
        else:
            obj = {}
            n = 0
            for a, v in zip(self.aggregates, values, strict=True):
                n += a.alias is None
                if v is not UNDEF:
                    obj[a.alias or f"${n}"] = v
            out = [obj]
        top = self._count(self.top, params, "TOP")
        offset = self._count(self.offset, params, "OFFSET") or 0
        out = out[offset:]
        return out[:top] if top is not None else out


def _run_aggregate(name: str, values: list[Any]) -> Any:
    defined = [v for v in values if v is not UNDEF]
    if name == "COUNT":
        return len(defined)
    if name in ("SUM", "AVG"):
        if any(not is_number(v) for v in defined):
            return UNDEF
        if name == "SUM":
            return normalise_number(sum(defined))
        return normalise_number(sum(defined) / len(defined)) if defined else UNDEF
    if any(isinstance(v, (list, dict)) for v in defined) or not defined:
        return UNDEF
    pick = min if name == "MIN" else max
    return pick(defined, key=sort_key)


class _Compiler:
    def __init__(self, text: str) -> None:
        self.text = text
        self.aliases: list[str] = []
        self.unnamed = 0

    def fail(self, construct: str) -> Exception:
        return bad_request(f"The query construct '{construct}' is not supported by the emulator.")

    def compile(self, tree: Tree) -> CompiledQuery:
        stmt = tree.children[0]
        parts: dict[str, Any] = {}
        for child in stmt.children:
            if isinstance(child, Tree):
                parts[child.data] = child
            elif isinstance(child, Token) and child.type not in ("SELECT",):
                pass
        selection = next(
            c
            for c in stmt.children
            if isinstance(c, Tree) and c.data in ("select_star", "select_value", "select_list")
        )
        joins: list[tuple[str, Expr]] = []
        if "from_clause" in parts:
            fc = parts["from_clause"]
            names = [c for c in fc.children if isinstance(c, Token) and c.type == "NAME"]
            self.aliases.append(str(names[-1]))
            for j in (c for c in fc.children if isinstance(c, Tree) and c.data == "join_clause"):
                kid = _kids(j)
                name = str(kid[0])
                source = self.expr(kid[1])
                self.aliases.append(name)
                joins.append((name, source))
        if "group_clause" in parts:
            raise self.fail("GROUP BY")
        where = self.expr(_kids(parts["where_clause"])[0]) if "where_clause" in parts else None
        order: list[tuple[Expr, bool]] = []
        paths: list[tuple[tuple[str, ...] | None, bool]] = []
        if "order_clause" in parts:
            for item in _kids(parts["order_clause"]):
                kid = _kids(item)
                desc = len(kid) > 1 and str(kid[1]).upper() == "DESC"
                order.append((self.expr(kid[0]), desc))
                paths.append((self._path(kid[0]), desc))
        q = CompiledQuery(self.text, self.aliases, joins, where, order, None)
        q.distinct = "distinct" in parts
        if "top" in parts:
            q.top = self.expr(_kids(parts["top"])[0])
        if "offset_clause" in parts:
            off, lim = _kids(parts["offset_clause"])
            q.offset, q.limit = self.expr(off), self.expr(lim)
        self.selection(selection, q)
        if paths and not joins and not q.distinct and not q.aggregates and all(p for p, _ in paths):
            q.order_paths = [(p, d) for p, d in paths if p]
            if "where_clause" in parts:
                q.order_seeks = self._seeks(_kids(parts["where_clause"])[0], q.order_paths[0][0])
        return q

    def _seeks(self, node: Any, path: tuple[str, ...]) -> list[tuple[str, Expr]]:
        """Range comparisons of ``path`` with a parameter or a literal among the top-level AND conjuncts."""
        if isinstance(node, Tree) and node.data == "and_op":
            left, right = _kids(node)
            return self._seeks(left, path) + self._seeks(right, path)
        if not (isinstance(node, Tree) and node.data == "compare"):
            return []
        a, op, b = _kids(node)
        op = str(op)
        if op not in _FLIPPED:
            return []
        constant = ("param", "str_lit", "int_lit", "float_lit")
        if self._path(a) == path and isinstance(b, Tree) and b.data in constant:
            return [(op, self.expr(b))]
        if self._path(b) == path and isinstance(a, Tree) and a.data in constant:
            return [(_FLIPPED[op], self.expr(a))]
        return []

    def _path(self, node: Any) -> tuple[str, ...] | None:
        """``c.a["b c"]`` → ("a", "b c") when rooted at the FROM alias with string keys only, else None."""
        keys: list[str] = []
        while isinstance(node, Tree) and node.data in ("member", "index"):
            kid = _kids(node)
            if node.data == "member":
                keys.append(str(kid[1].children[0]))
            elif isinstance(kid[1], Tree) and kid[1].data == "str_lit":
                keys.append(_string_literal(str(kid[1].children[0])))
            else:
                return None
            node = kid[0]
        if isinstance(node, Tree) and node.data == "ident":
            node = node.children[0]
        if not (
            isinstance(node, Token) and node.type == "NAME" and self.aliases and str(node) == self.aliases[0]
        ):
            return None
        return tuple(reversed(keys)) or None

    def selection(self, sel: Tree, q: CompiledQuery) -> None:
        if sel.data == "select_star":
            if len(self.aliases) != 1:
                raise bad_request("'SELECT *' is only valid with a single input set (a FROM without JOIN).")
            alias = self.aliases[0]
            q.star = True
            q.project = lambda env, p: env[alias]
            return
        if sel.data == "select_value":
            node = _kids(sel)[0]
            if self._is_aggregate(node):
                q.aggregates = [self._aggregate(node, None)]
                q.aggregate_value = True
                return
            self._reject_nested_aggregates(node)
            q.project = self.expr(node)
            return
        items = [_kids(i) for i in _kids(sel)]
        if any(self._is_aggregate(i[0]) for i in items):
            if not all(self._is_aggregate(i[0]) for i in items):
                raise bad_request(
                    "Mixing aggregates and non-aggregated values in SELECT requires GROUP BY, "
                    "which the emulator does not support."
                )
            q.aggregates = [self._aggregate(i[0], str(i[1]) if len(i) > 1 else None) for i in items]
            return
        compiled: list[tuple[str, Expr]] = []
        for i in items:
            self._reject_nested_aggregates(i[0])
            name = str(i[1]) if len(i) > 1 else self._implicit_name(i[0])
            compiled.append((name, self.expr(i[0])))

        def project(env: Env, p: dict[str, Any]) -> Any:
            out = {}
            for name, e in compiled:
                v = e(env, p)
                if v is not UNDEF:
                    out[name] = v
            return out

        q.project = project

    def _implicit_name(self, node: Any) -> str:
        if isinstance(node, Tree):
            if node.data == "member":
                return str(_kids(node)[1].children[0])
            if node.data == "ident":
                return str(node.children[0])
            if node.data == "index":
                key = _kids(node)[1]
                if isinstance(key, Tree) and key.data == "str_lit":
                    return _string_literal(str(key.children[0]))
        elif isinstance(node, Token) and node.type == "NAME":
            return str(node)
        self.unnamed += 1
        return f"${self.unnamed}"

    def _is_aggregate(self, node: Any) -> bool:
        return isinstance(node, Tree) and node.data == "call" and str(node.children[0]).upper() in AGGREGATES

    def _reject_nested_aggregates(self, node: Any) -> None:
        if isinstance(node, Tree):
            for sub in node.iter_subtrees():
                if self._is_aggregate(sub):
                    raise bad_request(
                        f"Aggregate {str(sub.children[0]).upper()} is supported only as a whole SELECT item "
                        "or as 'SELECT VALUE AGG(...)'."
                    )

    def _aggregate(self, node: Tree, alias: str | None) -> _Aggregate:
        kid = _kids(node)
        name = str(kid[0]).upper()
        if len(kid) != 2:
            raise bad_request(f"The aggregate function {name} takes exactly 1 argument.")
        self._reject_nested_aggregates(kid[1])
        return _Aggregate(name, self.expr(kid[1]), alias)

    # -- expressions ---------------------------------------------------------------------------

    def expr(self, node: Any) -> Expr:
        """Compile one expression node: each grammar rule has its method ``rule_<name>`` below."""
        if isinstance(node, Token):
            if node.type == "NAME":
                return self._ident(str(node))
            raise bad_request(f"Unexpected token '{node}' in expression.")
        rule = getattr(self, f"rule_{node.data}", None)
        if rule is None:
            raise self.fail(node.data)
        return rule(_kids(node), node)

    # Literals and parameters.

    def rule_int_lit(self, kid: list[Any], _node: Tree) -> Expr:
        v = int(kid[0])
        return lambda e, p: v

    def rule_float_lit(self, kid: list[Any], _node: Tree) -> Expr:
        f = normalise_number(float(kid[0]))
        return lambda e, p: f

    def rule_str_lit(self, kid: list[Any], _node: Tree) -> Expr:
        s = _string_literal(str(kid[0]))
        return lambda e, p: s

    def rule_true_lit(self, _kid: list[Any], _node: Tree) -> Expr:
        return lambda e, p: True

    def rule_false_lit(self, _kid: list[Any], _node: Tree) -> Expr:
        return lambda e, p: False

    def rule_null_lit(self, _kid: list[Any], _node: Tree) -> Expr:
        return lambda e, p: None

    def rule_undefined_lit(self, _kid: list[Any], _node: Tree) -> Expr:
        return lambda e, p: UNDEF

    def rule_param(self, kid: list[Any], _node: Tree) -> Expr:
        name = str(kid[0])

        def param(e: Env, p: dict[str, Any]) -> Any:
            if name not in p:
                raise bad_request(f"The query parameter '{name}' is not defined in 'parameters'.")
            return p[name]

        return param

    def rule_array_lit(self, kid: list[Any], _node: Tree) -> Expr:
        items = [self.expr(k) for k in kid]
        return lambda e, p: [v for i in items if (v := i(e, p)) is not UNDEF]

    def rule_object_lit(self, kid: list[Any], _node: Tree) -> Expr:
        props = []
        for prop in kid:
            pk = _kids(prop)
            key = str(pk[0])
            key = _string_literal(key) if key[:1] in "\"'" else key
            props.append((key, self.expr(pk[1])))

        def obj(e: Env, p: dict[str, Any]) -> Any:
            return {k: v for k, f in props if (v := f(e, p)) is not UNDEF}

        return obj

    # Paths into documents.

    def rule_ident(self, kid: list[Any], _node: Tree) -> Expr:
        return self._ident(str(kid[0]))

    def rule_member(self, kid: list[Any], _node: Tree) -> Expr:
        base = self.expr(kid[0])
        prop = str(kid[1].children[0])

        def member(e: Env, p: dict[str, Any]) -> Any:
            obj = base(e, p)
            return obj.get(prop, UNDEF) if isinstance(obj, dict) else UNDEF

        return member

    def rule_index(self, kid: list[Any], _node: Tree) -> Expr:
        base, key = self.expr(kid[0]), self.expr(kid[1])

        def index(e: Env, p: dict[str, Any]) -> Any:
            obj, k = base(e, p), key(e, p)
            if isinstance(obj, dict) and isinstance(k, str):
                return obj.get(k, UNDEF)
            if isinstance(obj, list) and is_number(k) and int(k) == k and 0 <= k < len(obj):
                return obj[int(k)]
            return UNDEF

        return index

    # Operators.

    def rule_neg(self, kid: list[Any], _node: Tree) -> Expr:
        inner = self.expr(kid[0])
        return lambda e, p: -v if is_number(v := inner(e, p)) else UNDEF

    def rule_arith(self, kid: list[Any], _node: Tree) -> Expr:
        return self._arith(self.expr(kid[0]), str(kid[1]), self.expr(kid[2]))

    def rule_concat_op(self, kid: list[Any], _node: Tree) -> Expr:
        a, b = self.expr(kid[0]), self.expr(kid[1])

        def concat(e: Env, p: dict[str, Any]) -> Any:
            x, y = a(e, p), b(e, p)
            return x + y if isinstance(x, str) and isinstance(y, str) else UNDEF

        return concat

    def rule_compare(self, kid: list[Any], _node: Tree) -> Expr:
        return self._compare(self.expr(kid[0]), str(kid[1]), self.expr(kid[2]))

    def rule_and_op(self, kid: list[Any], _node: Tree) -> Expr:
        return _connective(self.expr(kid[0]), self.expr(kid[1]), decisive=False)

    def rule_or_op(self, kid: list[Any], _node: Tree) -> Expr:
        return _connective(self.expr(kid[0]), self.expr(kid[1]), decisive=True)

    def rule_not_op(self, kid: list[Any], _node: Tree) -> Expr:
        inner = self.expr(kid[-1])
        return lambda e, p: (not v) if isinstance(v := inner(e, p), bool) else UNDEF

    def rule_in_op(self, _kid: list[Any], node: Tree) -> Expr:
        return self._in(node)

    def rule_between_op(self, _kid: list[Any], node: Tree) -> Expr:
        return self._between(node)

    def rule_like_op(self, _kid: list[Any], node: Tree) -> Expr:
        return self._like(node)

    def rule_conditional(self, kid: list[Any], _node: Tree) -> Expr:
        c, a, b = (self.expr(k) for k in kid)
        return lambda e, p: a(e, p) if c(e, p) is True else b(e, p)

    def rule_coalesce_op(self, kid: list[Any], _node: Tree) -> Expr:
        a, b = self.expr(kid[0]), self.expr(kid[1])
        return lambda e, p: v if (v := a(e, p)) is not UNDEF else b(e, p)

    def rule_call(self, kid: list[Any], _node: Tree) -> Expr:
        return self._call(kid)

    def rule_subquery(self, _kid: list[Any], _node: Tree) -> Expr:
        raise self.fail("subquery")

    def rule_exists_subquery(self, _kid: list[Any], _node: Tree) -> Expr:
        raise self.fail("EXISTS")

    def _ident(self, name: str) -> Expr:
        if name not in self.aliases:
            raise bad_request(
                f"Identifier '{name}' could not be resolved: it is not an alias defined in FROM."
            )
        return lambda e, p: e[name]

    def _arith(self, a: Expr, op: str, b: Expr) -> Expr:
        def arith(e: Env, p: dict[str, Any]) -> Any:
            x, y = a(e, p), b(e, p)
            if not (is_number(x) and is_number(y)):
                return UNDEF
            if op == "+":
                return normalise_number(x + y)
            if op == "-":
                return normalise_number(x - y)
            if op == "*":
                return normalise_number(x * y)
            if y == 0:
                return UNDEF
            if op == "/":
                return normalise_number(x / y)
            return normalise_number(x % y) if x >= 0 else -normalise_number((-x) % y)

        return arith

    def _compare(self, a: Expr, op: str, b: Expr) -> Expr:
        if op == "=":
            return lambda e, p: equals(a(e, p), b(e, p))
        if op in ("!=", "<>"):
            return lambda e, p: (not r) if isinstance(r := equals(a(e, p), b(e, p)), bool) else UNDEF
        test = {"<": lambda c: c < 0, "<=": lambda c: c <= 0, ">": lambda c: c > 0, ">=": lambda c: c >= 0}[
            op
        ]

        def cmp(e: Env, p: dict[str, Any]) -> Any:
            c = compare(a(e, p), b(e, p))
            return UNDEF if c is UNDEF else test(c)

        return cmp

    def _negated(self, node: Tree) -> bool:
        return any(isinstance(c, Token) and c.type == "NOT" for c in node.children)

    def _in(self, node: Tree) -> Expr:
        kid = [k for k in _kids(node) if not (isinstance(k, Token) and k.type == "NOT")]
        target = self.expr(kid[0])
        options = [self.expr(k) for k in kid[1:]]
        negate = self._negated(node)
        # IN over literals and parameters (e.g. the SDK's read_items with thousands of ids): hash the
        # options once per execution instead of comparing every row with every option.
        constant = all(isinstance(k, Tree) and k.data in _CONSTANT_KINDS for k in kid[1:])
        cache: dict[str, Any] = {"params": None, "keys": None}

        def in_(e: Env, p: dict[str, Any]) -> Any:
            v = target(e, p)
            if v is UNDEF:
                return UNDEF
            if constant:
                if cache["params"] is not p:
                    cache["keys"] = {_hash_key(o(e, p)) for o in options}
                    cache["params"] = p
                found = _hash_key(v) in cache["keys"]
            else:
                found = any(equals(v, o(e, p)) is True for o in options)
            return not found if negate else found

        return in_

    def _between(self, node: Tree) -> Expr:
        kid = [k for k in _kids(node) if not (isinstance(k, Token) and k.type == "NOT")]
        target, lo, hi = (self.expr(k) for k in kid)
        negate = self._negated(node)

        def between(e: Env, p: dict[str, Any]) -> Any:
            v = target(e, p)
            c1, c2 = compare(v, lo(e, p)), compare(v, hi(e, p))
            if c1 is UNDEF or c2 is UNDEF:
                return UNDEF
            inside = c1 >= 0 and c2 <= 0
            return not inside if negate else inside

        return between

    def _like(self, node: Tree) -> Expr:
        kid = [k for k in _kids(node) if not (isinstance(k, Token) and k.type == "NOT")]
        target, pattern = self.expr(kid[0]), self.expr(kid[1])
        negate = self._negated(node)
        cache: dict[str, re.Pattern[str]] = {}

        def like(e: Env, p: dict[str, Any]) -> Any:
            v, pat = target(e, p), pattern(e, p)
            if not (isinstance(v, str) and isinstance(pat, str)):
                return UNDEF
            rx = cache.get(pat)
            if rx is None:
                rx = re.compile(
                    "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pat),
                    re.DOTALL,
                )
                cache[pat] = rx
            matched = rx.fullmatch(v) is not None
            return not matched if negate else matched

        return like

    def _call(self, kid: list[Any]) -> Expr:
        name = str(kid[0]).upper()
        if name in AGGREGATES:
            raise bad_request(
                f"Aggregate {name} is supported only as a whole SELECT item or as 'SELECT VALUE {name}(...)'."
            )
        spec = FUNCTIONS.get(name)
        if spec is None:
            raise bad_request(
                f"The function '{kid[0]}' is not supported by the emulator (or does not exist)."
            )
        lo, hi, impl = spec
        args = [self.expr(k) for k in kid[1:]]
        if not lo <= len(args) <= hi:
            raise bad_request(f"The function {name} takes {lo}..{hi} arguments; got {len(args)}.")

        def call(e: Env, p: dict[str, Any]) -> Any:
            return impl([a(e, p) for a in args])

        return call


def compile_tree(text: str, tree: Tree) -> CompiledQuery:
    return _Compiler(text).compile(tree)
