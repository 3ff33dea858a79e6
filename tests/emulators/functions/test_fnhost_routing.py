"""Route templates and the first-match route table, without a server."""

import pytest

from emulators.functions.routing import Route, Router, RouteTemplate, RouteTemplateError, split_path


def router(*templates: str, methods=None) -> Router:
    return Router(Route(RouteTemplate.parse(t), methods, t) for t in templates)


def target(r: Router, path: str, method: str = "GET"):
    found = r.match(method, path)
    return None if found is None else (found[0].target, found[1])


def test_the_first_matching_route_wins_in_the_order_they_were_added():
    """Azure's WebJobsRouter: no precedence sort, so a catch-all added first takes everything."""
    r = router("items/{id:int}", "items/new", "items/{name}", "{*path}")
    assert target(r, "/items/new") == ("items/new", {})
    assert target(r, "/items/42") == ("items/{id:int}", {"id": "42"})
    assert target(r, "/items/abc") == ("items/{name}", {"name": "abc"})
    assert target(r, "/other/deep/path") == ("{*path}", {"path": "other/deep/path"})
    assert target(r, "/") == ("{*path}", {})
    first = router("{*path}", "items/new", "items/{id:int}")
    assert target(first, "/items/new") == ("{*path}", {"path": "items/new"})
    assert target(first, "/items/42") == ("{*path}", {"path": "items/42"})


def test_shadowing_names_the_earlier_route_and_the_method():
    r = Router([Route(RouteTemplate.parse("a/{x}"), frozenset({"GET"}), "param"),
                Route(RouteTemplate.parse("a/lit"), frozenset({"GET", "POST"}), "literal")])
    assert [(m, e.target) for m, e in r.shadowing(r.routes[1])] == [("GET", "param")]
    assert r.shadowing(r.routes[0]) == []


def test_literals_are_case_insensitive_and_values_are_decoded_except_slash():
    r = router("api/rooms/{room}/messages")
    assert target(r, "/API/Rooms/caf%C3%A9/messages") == ("api/rooms/{room}/messages", {"room": "café"})
    assert target(r, "/api/rooms/a%2Fb/messages")[1] == {"room": "a%2Fb"}
    assert split_path("/a//b/") == ["a", "b"]


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("n/{x:int}", "/n/2147483647", {"x": "2147483647"}),
        ("n/{x:int}", "/n/2147483648", None),
        ("n/{x:long}", "/n/2147483648", {"x": "2147483648"}),
        ("n/{x:bool}", "/n/TRUE", {"x": "TRUE"}),
        ("n/{x:guid}", "/n/0f8fad5b-d9cb-469f-a165-70867728950e",
         {"x": "0f8fad5b-d9cb-469f-a165-70867728950e"}),
        ("n/{x:guid}", "/n/nope", None),
        ("n/{x:alpha}", "/n/abc1", None),
        ("n/{x:length(2,3)}", "/n/abcd", None),
        ("n/{x:min(5)}", "/n/4", None),
        ("n/{x:range(1,9)}", "/n/9", {"x": "9"}),
        ("n/{x:regex(^[a-z]{{3}}$)}", "/n/abc", {"x": "abc"}),
        ("n/{x:regex(^[a-z]{{3}}$)}", "/n/abcd", None),
        ("n/{x:regex(b)}", "/n/abc", {"x": "abc"}),  # unanchored, as RegexRouteConstraint
        ("n/{x:int:min(10)}", "/n/9", None),
        ("n/{x?}", "/n", {}),
        ("n/{x=dflt}", "/n", {"x": "dflt"}),
        ("n/{x}", "/n", None),
        ("n/{x}", "/n/a/b", None),
        ("f/{name}.{ext}", "/f/archive.tar.gz", {"name": "archive.tar", "ext": "gz"}),
        ("c/{**rest}", "/c/a/b/c", {"rest": "a/b/c"}),
    ],
)
def test_constraints_optional_defaults_and_complex_segments(template, path, expected):
    found = target(router(template), path)
    assert (None if found is None else found[1]) == expected


def test_methods_filter_routes_and_fall_through_to_the_next_match():
    r = Router([Route(RouteTemplate.parse("only"), frozenset({"POST"}), "post"),
                Route(RouteTemplate.parse("{*p}"), frozenset({"GET"}), "get-all")])
    assert target(r, "/only", "POST")[0] == "post"
    assert target(r, "/only", "GET")[0] == "get-all"
    assert target(r, "/only", "DELETE") is None


@pytest.mark.parametrize("bad", ["a/{x", "a/{x}/{X}", "{*a}/b", "a/{x}{y}", "a/{x:nosuch}", "a//b"])
def test_bad_templates_are_refused(bad):
    with pytest.raises(RouteTemplateError):
        RouteTemplate.parse(bad)
