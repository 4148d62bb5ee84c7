"""Which step of a request a py-spy stack sample belongs to (scripts/bench-app --profile).

A sample is a stack of `function (file:line)` frames, outermost first. It belongs to the step of
its innermost frame that names one: library code a step calls (redis-py, pydantic, asyncio,
prometheus_client) counts for that step. Samples with no such frame are the event loop itself:
uvloop's C code, socket reads and writes, scheduling.
"""

SERVER = "server: HTTP parsing and writing (Uvicorn, httptools, Gunicorn worker)"
MIDDLEWARE = "our middleware: request id, access line, metrics"
FRAMEWORK = "Starlette/FastAPI middleware stack and exception handling"
ROUTING = "routing and endpoint dispatch"
DEPENDENCIES = "dependency resolution (FastAPI)"
THREAD_POOL = "thread-pool hops (plain `def` dependencies)"
HANDLER = "handler code"
CACHE = "cache lookup (redis-py GET and its socket reads)"
RESPONSE = "response building and sending (Starlette)"
CLICK_RECORD = "click recording (in the request)"
CLICK_FLUSH = "click flush: Postgres batch and pub/sub publish (background)"
CLICK_STREAM = "click events received by this worker's subscriber (background)"
OTHER_BACKGROUND = "other background tasks (fault poller, pool sampler)"
LOOP = "event loop, sockets and the rest (uvloop)"

STEPS = (
    SERVER,
    MIDDLEWARE,
    FRAMEWORK,
    ROUTING,
    DEPENDENCIES,
    THREAD_POOL,
    HANDLER,
    CACHE,
    RESPONSE,
    CLICK_RECORD,
    CLICK_FLUSH,
    CLICK_STREAM,
    OTHER_BACKGROUND,
    LOOP,
)

# (part of the file's path, the function's own name or None for any, step): the first match wins.
_RULES = (
    ("app/services/link_cache.py", None, CACHE),
    ("app/services/clicks.py", "record", CLICK_RECORD),
    ("app/services/clicks.py", None, CLICK_FLUSH),
    ("app/services/click_stream.py", None, CLICK_STREAM),
    ("app/services/faults.py", None, OTHER_BACKGROUND),
    ("app/core/lifespan.py", None, OTHER_BACKGROUND),
    ("app/middleware/", None, MIDDLEWARE),
    ("app/core/request_telemetry.py", None, MIDDLEWARE),
    ("app/api/deps.py", None, DEPENDENCIES),
    ("app/api/routes/", None, HANDLER),
    ("starlette/responses.py", None, RESPONSE),
    # A sync dependency's trip to a worker thread and back, on either side.
    ("anyio/", None, THREAD_POOL),
    ("starlette/concurrency.py", None, THREAD_POOL),
    ("/threading.py", None, THREAD_POOL),
    ("/queue.py", None, THREAD_POOL),
    ("fastapi/dependencies/", None, DEPENDENCIES),
    ("starlette/requests.py", None, DEPENDENCIES),  # the Request the accessors take
    ("starlette/routing.py", None, ROUTING),
    ("fastapi/routing.py", None, ROUTING),
    ("starlette/middleware/", None, FRAMEWORK),
    ("starlette/_exception_handler.py", None, FRAMEWORK),
    ("starlette/applications.py", None, FRAMEWORK),
    ("fastapi/middleware/", None, FRAMEWORK),
    ("fastapi/telemetry/", None, FRAMEWORK),
    ("fastapi/_body_limit.py", None, FRAMEWORK),
    ("fastapi/applications.py", None, FRAMEWORK),
    ("uvicorn/", None, SERVER),
    ("uvicorn_worker/", None, SERVER),
    ("gunicorn/", None, SERVER),
)


def _frame_step(frame: str) -> str | None:
    """`ClickRecorder.record (app/services/clicks.py:52)` -> its step, or None."""
    function, _, location = frame.partition(" (")
    path = "/" + location.rsplit(":", 1)[0]
    name = function.rsplit(".", 1)[-1]
    for part, wanted, step in _RULES:
        if part in path and wanted in (None, name):
            return step
    return None


def step_of(stack: list[str]) -> str:
    """The step of one sample: `stack` outermost frame first, as py-spy's raw format writes it."""
    for frame in reversed(stack):
        step = _frame_step(frame)
        if step is not None:
            return step
    return LOOP
