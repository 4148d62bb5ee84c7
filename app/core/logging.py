"""JSON logs, one line per event, for the app and for Gunicorn's and Uvicorn's own loggers.

App events go through structlog; stdlib records (gunicorn, uvicorn, asyncpg) are rendered by the
same processors. The per-request access line has its own writer (app/core/request_telemetry.py).
"""

import logging
import logging.config
import os
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}


def _replica_adder(replica: str) -> Processor:
    def add_replica(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("replica", replica)
        # Which Gunicorn worker: several share one replica name.
        event_dict.setdefault("pid", os.getpid())
        return event_dict

    return add_replica


# The id of the request being served, added to every line logged while serving it.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def _add_request_id(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event_dict["request_id"] = request_id
    return event_dict


_second_prefix: tuple[int, str] = (-1, "")


def utc_timestamp() -> str:
    """RFC 3339 in UTC with microseconds; the date part is formatted once per second (a hot path)."""
    global _second_prefix
    now = time.time()
    second = int(now)
    if second != _second_prefix[0]:
        _second_prefix = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_second_prefix[1]}.{int((now - second) * 1_000_000):06d}+00:00"


def _add_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict["timestamp"] = utc_timestamp()
    return event_dict


def _shared_processors(replica: str) -> list[Processor]:
    return [
        _add_request_id,
        structlog.processors.add_log_level,
        _add_timestamp,
        _replica_adder(replica),
    ]


def _dumps(obj: object, **_: object) -> str:
    return orjson.dumps(obj, default=str).decode()


# The traceback becomes the `exception` field of the same JSON line.
_RENDER: list[Processor] = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(serializer=_dumps)]


def stdlib_config(level: str, replica: str) -> dict[str, Any]:
    """A dictConfig for stdlib loggers; Gunicorn takes it as `logconfig_dict`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": [*_shared_processors(replica), structlog.stdlib.add_logger_name],
                "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_RENDER],
            }
        },
        "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}},
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "gunicorn.error": {"handlers": ["stdout"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["stdout"], "level": level, "propagate": False},
            # The app writes its own access line (with route template and request id).
            "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }


class _CurrentStdout:
    """Writes to whatever sys.stdout is at write time, so replacing it (tests do) takes effect."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def configure_logging(level: str, replica: str) -> None:
    logging.config.dictConfig(stdlib_config(level, replica))
    structlog.configure(
        processors=[*_shared_processors(replica), *_RENDER],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=_CurrentStdout()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
