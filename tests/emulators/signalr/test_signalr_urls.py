"""The REST operations table: each row is reachable, both path orders meet, and the rest is refused."""

from __future__ import annotations

import pytest

from emulators.signalr import rest, urls


@pytest.mark.parametrize(
    ("method", "path", "action", "handler", "captures"),
    [
        ("POST", "", None, "broadcast", {}),
        ("POST", "", "send", "broadcast", {}),
        ("POST", "", "closeConnections", "close_hub", {}),
        ("POST", "Users/a%2Fb", None, "send_to_user", {"user": "a%2Fb"}),
        ("HEAD", "users/u", None, "user_exists", {"user": "u"}),
        ("PUT", "users/u/groups/g", None, "add_user_to_group", {"user": "u", "group": "g"}),
        ("PUT", "groups/g/users/u", None, "add_user_to_group", {"user": "u", "group": "g"}),
        ("GET", "GROUPS/g/CONNECTIONS/c", None, "connection_in_group", {"group": "g", "connection": "c"}),
        ("DELETE", "connections/c/groups", None, "remove_connection_from_all_groups", {"connection": "c"}),
        ("DELETE", "connections/c", None, "close_connection", {"connection": "c"}),
    ],
)
def test_a_request_reaches_its_operation(method, path, action, handler, captures):
    segments = path.split("/") if path else []
    assert urls.match(method, segments, action) == (handler, captures)


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("POST", "", "bogus"),  # an unknown :action is no operation
        ("PUT", "users/u", None),
        ("POST", "connections/c", "closeConnections"),  # only hubs, users and groups close in bulk
        ("GET", "users/u/groups", None),
        ("GET", "nothing/here", None),
    ],
)
def test_what_no_row_serves_is_not_matched(method, path, action):
    assert urls.match(method, path.split("/") if path else [], action) is None


def test_a_membership_asked_with_another_method_names_the_methods_it_takes():
    assert urls.wrong_method(["groups", "g", "users", "u"]) == urls.USER_GROUP
    assert urls.wrong_method(["connections", "c", "groups", "g"]) == urls.CONNECTION_GROUP
    assert urls.wrong_method(["users", "u"]) is None


def test_every_row_is_implemented_by_one_function_of_rest():
    assert set(rest.OPERATIONS) == {route.handler for route in urls.ROUTES}
    assert all(callable(fn) and fn.__module__ == rest.__name__ for fn in rest.OPERATIONS.values())
