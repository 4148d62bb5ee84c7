"""What a route can answer besides its success, for its OpenAPI `responses`.

Every status a route can return is declared with its body and headers: clients and schemathesis
(tests/app/test_api_contract.py) hold the app to this. 422 and 429 are added to every operation
that can answer them by app/api/openapi.py.
"""

from typing import Any

from app.api.errors import RETRY_AFTER_S
from app.models import Problem

Responses = dict[int | str, dict[str, Any]]

RETRY_AFTER = {
    "Retry-After": {
        "description": f"Seconds to wait before trying again ({RETRY_AFTER_S}).",
        "schema": {"type": "integer"},
    }
}

UNAUTHORIZED: Responses = {
    401: {
        "model": Problem,
        "description": "The token is missing or wrong.",
        "headers": {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    }
}
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No link with this code."}}
UNAVAILABLE: Responses = {
    503: {
        "model": Problem,
        "description": "Postgres or Redis is not answering: nothing was changed; try again after Retry-After.",
        "headers": RETRY_AFTER,
    }
}
