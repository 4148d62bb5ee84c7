"""503 for a dependency that cannot serve a request now.

The client gets a sentence that says what is wrong, in plain words, and a Retry-After. The
exception, whose text can name hosts or carry driver messages, goes to the log only: once per
outage (app/core/outages.py), with the request id and the traceback.
"""

from fastapi import Request, status
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.core.outages import REDIS, Outage

# Long enough not to meet the same blip again, short enough that a client does not give up.
RETRY_AFTER_S = 2
DATABASE_NOT_ANSWERING = "the database is not answering; try again shortly"
CACHE_NOT_ANSWERING = "the cache is not answering; try again shortly"


class Unavailable(Exception):
    """Raised `from` the dependency's exception, with the sentence the client gets."""

    def __init__(self, detail: str, outage: Outage) -> None:
        super().__init__(detail)
        self.detail = detail
        self.outage = outage


def _answer(detail: str, exc: BaseException, outage: Outage) -> JSONResponse:
    outage.failed(exc, detail=detail)
    return JSONResponse(
        {"detail": detail}, status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


async def _unavailable(_: Request, exc: Unavailable) -> JSONResponse:
    return _answer(exc.detail, exc.__cause__ or exc, exc.outage)


async def _redis_down(_: Request, exc: RedisConnectionError | RedisTimeoutError) -> JSONResponse:
    """Redis down wherever a route lets it through (the fault switch): the same 503, not a 500."""
    return _answer(CACHE_NOT_ANSWERING, exc, REDIS)


EXCEPTION_HANDLERS = {
    Unavailable: _unavailable,
    RedisConnectionError: _redis_down,
    RedisTimeoutError: _redis_down,
}
