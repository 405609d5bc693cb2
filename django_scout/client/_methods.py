"""What an endpoint is, and how one description becomes a blocking and an asynchronous method.

An endpoint is written once, in :mod:`.resources`, as a function whose signature and docstring are
the public method's, with the client's :class:`~._config.ClientConfig` as an extra first
parameter. It checks the arguments, builds the request and returns what to do with it: a
:class:`Call` (read the whole answer, parse it) or a :class:`Stream` (iterate over the answer).
Nothing is sent there, so the same description serves both clients.

:func:`sync_method` and :func:`async_method` turn that function into a method of a
:class:`SyncResource` or an :class:`AsyncResource`. The result is typed from the description (same
parameters; ``Call[T]`` becomes ``T`` or a coroutine of ``T``, ``Stream[T]`` becomes
:class:`EventStream` or :class:`AsyncEventStream`), and carries its name, docstring and signature
so that ``help()`` and ``inspect.signature`` show the method, not the description.

Endpoints that differ only in how the answer is read (``agents.interact`` and ``agents.stream``)
share their parameters: :func:`with_parameters_of` makes each description from one function that
takes the arguments.
"""

from __future__ import annotations

import functools
import inspect
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

import httpx

from ._config import ClientConfig
from ._decoders import StreamDecoder
from ._http import AsyncHTTP, RequestSpec, SyncHTTP
from .event_stream import (
    AsyncEventStream,
    EventStream,
    aiter_decoded,
    aopen_stream,
    iter_decoded,
    open_stream,
)
from .streams import SessionEvent, aiter_session_events, iter_session_events

__all__ = [
    "AsyncResource",
    "Call",
    "DecodedStream",
    "SessionEventStream",
    "Stream",
    "SyncResource",
    "async_method",
    "sync_method",
    "with_parameters_of",
]

P = ParamSpec("P")
T = TypeVar("T")
A = TypeVar("A")

#: Set on each derived method: the description it was made from.
_ENDPOINT = "_scout_endpoint"


# --------------------------------------------------------------------------- what to send


@dataclass(frozen=True)
class Call(Generic[T]):
    """A request whose answer is read whole, then turned into the result by ``parse``."""

    spec: RequestSpec
    parse: Callable[[httpx.Response], T]

    def send(self, http: SyncHTTP) -> T:
        """Send and parse (blocking)."""
        return self.parse(http.send(self.spec))

    async def asend(self, http: AsyncHTTP) -> T:
        """Send and parse (asynchronous)."""
        return self.parse(await http.send(self.spec))


class Stream(ABC, Generic[T]):
    """A request whose answer is iterated; nothing is sent until the first item is asked for."""

    @abstractmethod
    def open(self, http: SyncHTTP) -> EventStream[T]:
        """The blocking iterator."""

    @abstractmethod
    def aopen(self, http: AsyncHTTP) -> AsyncEventStream[T]:
        """The asynchronous iterator."""


@dataclass(frozen=True)
class DecodedStream(Stream[T]):
    """An SSE answer (or a plain JSON one) whose messages ``decoder`` turns into items."""

    spec: RequestSpec
    decoder: StreamDecoder[T]

    def open(self, http: SyncHTTP) -> EventStream[T]:
        """Iterate over the decoded items."""
        return iter_decoded(http, self.spec, self.decoder)

    def aopen(self, http: AsyncHTTP) -> AsyncEventStream[T]:
        """Iterate (``async for``) over the decoded items."""
        return aiter_decoded(http, self.spec, self.decoder)


@dataclass(frozen=True)
class SessionEventStream(Stream[SessionEvent]):
    """A session's events, in whichever format they come (see :mod:`.streams`): an
    ``events_url``, or an agent's streamed interaction. The stream's ``ended_with_done`` is set
    when a ``[DONE]`` sentinel ended it."""

    spec: RequestSpec

    def open(self, http: SyncHTTP) -> EventStream[SessionEvent]:
        """Iterate over the session's events."""
        streams: list[EventStream[SessionEvent]] = []

        def done() -> None:
            streams[0].ended_with_done = True

        stream = open_stream(http, self.spec, functools.partial(iter_session_events, on_done=done))
        streams.append(stream)
        return stream

    def aopen(self, http: AsyncHTTP) -> AsyncEventStream[SessionEvent]:
        """Iterate (``async for``) over the session's events."""
        streams: list[AsyncEventStream[SessionEvent]] = []

        def done() -> None:
            streams[0].ended_with_done = True

        read = functools.partial(aiter_session_events, on_done=done)
        stream = aopen_stream(http, self.spec, read)
        streams.append(stream)
        return stream


def with_parameters_of(
    parameters: Callable[P, A],
) -> Callable[[Callable[[A], T]], Callable[P, T]]:
    """A decorator making a description out of ``finish`` (the decorated function), which reads
    the answer, and ``parameters``, which takes the arguments.

    ``parameters`` has the public signature (with the first ``config`` parameter) and returns
    what ``finish`` needs, e.g. the request builder with everything but ``stream`` given;
    ``finish`` gives the docstring and the return type. The description calls one, then the
    other, so the arguments are still checked when the method is called. Several descriptions
    made from one ``parameters`` gain a new parameter in one place.
    """

    def decorate(finish: Callable[[A], T]) -> Callable[P, T]:
        def description(*args: P.args, **kwargs: P.kwargs) -> T:
            return finish(parameters(*args, **kwargs))

        hints = typing.get_type_hints(parameters)
        hints["return"] = typing.get_type_hints(finish)["return"]
        signature = inspect.signature(parameters).replace(return_annotation=hints["return"])
        description.__annotations__ = hints
        description.__doc__ = finish.__doc__
        description.__name__ = finish.__name__
        description.__qualname__ = finish.__qualname__
        description.__module__ = finish.__module__
        vars(description)["__signature__"] = signature
        return description

    return decorate


# --------------------------------------------------------------------------- resources


class _Resource:
    _config: ClientConfig

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A derived method is made before its class exists: name it after its attribute here.
        super().__init_subclass__(**kwargs)
        for name, value in vars(cls).items():
            if inspect.isfunction(value) and _ENDPOINT in vars(value):
                value.__name__ = name
                value.__qualname__ = f"{cls.__qualname__}.{name}"
                value.__module__ = cls.__module__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._config.base_url}>"


class SyncResource(_Resource):
    """Base of the blocking resources (``client.agents`` and the others)."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http
        self._config = http.config


class AsyncResource(_Resource):
    """Base of the asynchronous resources."""

    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http
        self._config = http.config


# --------------------------------------------------------------------------- methods


@overload
def sync_method(
    endpoint: Callable[Concatenate[ClientConfig, P], Call[T]],
) -> Callable[Concatenate[SyncResource, P], T]: ...
@overload
def sync_method(
    endpoint: Callable[Concatenate[ClientConfig, P], Stream[T]],
) -> Callable[Concatenate[SyncResource, P], EventStream[T]]: ...
def sync_method(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The blocking method described by ``endpoint``."""
    kind, item = _returns(endpoint)
    if kind is Call:

        def call(self: SyncResource, /, *args: Any, **kwargs: Any) -> Any:
            described: Call[Any] = endpoint(self._config, *args, **kwargs)
            return described.send(self._http)

        return _present(call, endpoint, item)

    def stream(self: SyncResource, /, *args: Any, **kwargs: Any) -> Any:
        described: Stream[Any] = endpoint(self._config, *args, **kwargs)
        return described.open(self._http)

    return _present(stream, endpoint, _parametrize(EventStream, item))


@overload
def async_method(
    endpoint: Callable[Concatenate[ClientConfig, P], Call[T]],
) -> Callable[Concatenate[AsyncResource, P], Coroutine[Any, Any, T]]: ...
@overload
def async_method(
    endpoint: Callable[Concatenate[ClientConfig, P], Stream[T]],
) -> Callable[Concatenate[AsyncResource, P], AsyncEventStream[T]]: ...
def async_method(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The asynchronous method described by ``endpoint``: a coroutine function for a
    :class:`Call` (so the arguments are checked when it is awaited, as in any ``async def``); for
    a :class:`Stream`, a plain method returning an async iterator (checked at the call)."""
    kind, item = _returns(endpoint)
    if kind is Call:

        async def call(self: AsyncResource, /, *args: Any, **kwargs: Any) -> Any:
            described: Call[Any] = endpoint(self._config, *args, **kwargs)
            return await described.asend(self._http)

        return _present(call, endpoint, item)

    def stream(self: AsyncResource, /, *args: Any, **kwargs: Any) -> Any:
        described: Stream[Any] = endpoint(self._config, *args, **kwargs)
        return described.aopen(self._http)

    return _present(stream, endpoint, _parametrize(AsyncEventStream, item))


def _returns(endpoint: Callable[..., Any]) -> tuple[type[Call[Any] | Stream[Any]], Any]:
    """``(Call, T)`` or ``(Stream, T)``, from the return annotation ``Call[T]``/``Stream[T]``."""
    returns = typing.get_type_hints(endpoint)["return"]
    kind = typing.get_origin(returns)
    if kind is Call or kind is Stream:
        return kind, typing.get_args(returns)[0]
    raise TypeError(f"{endpoint.__qualname__} must be annotated to return Call[...] or Stream[...]")


def _parametrize(generic: Any, item: Any) -> Any:
    return generic[item]


def _present(
    method: Callable[..., Any], endpoint: Callable[..., Any], returns: Any
) -> Callable[..., Any]:
    """Give ``method`` the docstring, signature and annotations of ``endpoint`` (whose first
    parameter, the config, becomes ``self``), returning ``returns``."""
    hints = typing.get_type_hints(endpoint)
    described = inspect.signature(endpoint)
    parameters = list(described.parameters.values())[1:]
    shown = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    shown += [parameter.replace(annotation=hints[parameter.name]) for parameter in parameters]
    method.__doc__ = endpoint.__doc__
    method.__annotations__ = {parameter.name: hints[parameter.name] for parameter in parameters}
    method.__annotations__["return"] = returns
    # Functions have a __dict__, but typeshed declares no __signature__ attribute on them.
    vars(method).update(
        __signature__=described.replace(parameters=shown, return_annotation=returns),
        **{_ENDPOINT: endpoint},
    )
    return method
