"""The query engine: a lark grammar for the Cosmos SQL subset and a compiler to Python closures."""

from __future__ import annotations

from functools import lru_cache

from .compiler import CompiledQuery, compile_tree, parse
from .values import UNDEF


@lru_cache(maxsize=512)
def compile_query(text: str) -> CompiledQuery:
    """Parse and compile once per distinct query text; raises a 400 CosmosError naming bad constructs."""
    if not isinstance(text, str) or not text.strip():
        from ..errors import bad_request

        raise bad_request("The query text must be a non-empty string.")
    try:
        return compile_tree(text, parse(text))
    except RecursionError:
        from ..errors import bad_request

        raise bad_request("The query nests expressions too deeply to evaluate.") from None


__all__ = ["UNDEF", "CompiledQuery", "compile_query"]
