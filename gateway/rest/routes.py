"""The route table, read from the google.api.http options of the services' descriptors, and the router.

Routing copies grpc-gateway's runtime.ServeMux: routes registered later are tried first (the generated code
prepends each handler, in proto order); a verb is split off the last path component only for a route that has
one; a path that some route of another HTTP method matches is 405 (Unimplemented), anything else 404.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor, ServiceDescriptor

from gateway.rest.template import PathTemplate, parse_template, split_verb

HTTP_BODY = "google.api.HttpBody"


class RouteError(ValueError):
    """A google.api.http option the shim cannot serve; raised at start-up, naming the method."""


@dataclass(frozen=True)
class Route:
    http_method: str
    template: PathTemplate
    method: MethodDescriptor
    # "" (no body), "*" (the whole request) or the name of the top-level request field the body fills.
    body: str
    # "" or the name of the top-level response field that is the whole response body.
    response_body: str
    # 0 for the rule itself, 1.. for its additional_bindings, in order.
    binding: int

    @property
    def grpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def server_streaming(self) -> bool:
        return bool(self.method.server_streaming)

    @property
    def path_fields(self) -> tuple[tuple[str, ...], ...]:
        return tuple(v.field_path for v in self.template.variables)

    @property
    def http_body_response(self) -> bool:
        return self.method.output_type.full_name == HTTP_BODY and not self.response_body


@dataclass(frozen=True)
class Resolved:
    route: Route
    params: dict[str, str]


@dataclass(frozen=True)
class RoutingError:
    """What grpc-gateway's DefaultRoutingErrorHandler is called with: 400, 404 or 405."""

    http_status: int


def field_at(message: Descriptor, path: Sequence[str]) -> FieldDescriptor:
    """The field a dotted path names, every step but the last a singular message field; KeyError if none."""
    descriptor = message
    field: FieldDescriptor | None = None
    for depth, name in enumerate(path):
        if field is not None:
            if field.message_type is None or _repeated(field):
                raise KeyError(".".join(path[:depth]))
            descriptor = field.message_type
        found = descriptor.fields_by_name.get(name)
        if found is None:
            raise KeyError(".".join(path[: depth + 1]))
        field = found
    if field is None:
        raise KeyError("")
    return field


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _pattern(rule: http_pb2.HttpRule) -> tuple[str, str]:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        return "", ""
    if kind == "custom":
        return rule.custom.kind.upper(), rule.custom.path
    return kind.upper(), str(getattr(rule, kind))


def _route(method: MethodDescriptor, rule: http_pb2.HttpRule, binding: int) -> Route:
    where = f"{method.full_name} (binding {binding})"
    http_method, path = _pattern(rule)
    if not http_method:
        raise RouteError(f"{where}: the google.api.http rule has no pattern")
    try:
        template = parse_template(path)
    except ValueError as exc:
        raise RouteError(f"{where}: {exc}") from None
    request = method.input_type
    for variable in template.variables:
        try:
            field = field_at(request, variable.field_path)
        except KeyError:
            raise RouteError(f"{where}: path variable {variable.name} is not a field of {request.full_name}") from None
        if _repeated(field) or field.message_type is not None:
            raise RouteError(f"{where}: path variable {variable.name} must be a singular scalar or enum field")
    if rule.body not in ("", "*") and rule.body not in request.fields_by_name:
        raise RouteError(f"{where}: body {rule.body!r} is not a top-level field of {request.full_name}")
    if rule.response_body and rule.response_body not in method.output_type.fields_by_name:
        raise RouteError(f"{where}: response_body {rule.response_body!r} is not a field of the response")
    return Route(http_method, template, method, rule.body, rule.response_body, binding)


def routes_of(services: Iterable[ServiceDescriptor]) -> list[Route]:
    """Every binding of every method with a google.api.http option, in registration order."""
    routes: list[Route] = []
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
            routes.append(_route(method, rule, 0))
            for index, extra in enumerate(rule.additional_bindings, start=1):
                routes.append(_route(method, extra, index))
    return routes


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        self._by_method: dict[str, list[Route]] = {}
        for route in self.routes:
            self._by_method.setdefault(route.http_method, []).insert(0, route)

    def resolve(self, http_method: str, raw_path: str) -> Resolved | RoutingError:
        if not raw_path.startswith("/"):
            return RoutingError(400)
        components = raw_path[1:].split("/")
        for route in self._by_method.get(http_method, ()):
            split = split_verb(components, route.template.verb)
            if split is None:
                return RoutingError(404)
            params = route.template.match(*split)
            if params is not None:
                return Resolved(route, params)
        for other, routes in self._by_method.items():
            if other == http_method:
                continue
            for route in routes:
                split = split_verb(components, route.template.verb)
                if split is not None and route.template.match(*split) is not None:
                    return RoutingError(405)
        return RoutingError(404)

    def allowed_methods(self, raw_path: str) -> list[str]:
        """The HTTP methods some route serves raw_path with (the Allow header of a 405)."""
        return sorted(method for method in self._by_method if isinstance(self.resolve(method, raw_path), Resolved))
