"""The OpenAPI document, made to say what the app and its edge really answer.

FastAPI documents a 422 whose `detail` is a list (HTTPValidationError); this app answers a
sentence and a list of field errors (app/main.py, `_validation_error`): each 422 FastAPI
declares is replaced by ValidationProblem; a body that cannot even be decoded (not UTF-8) gets
FastAPI's 400, declared for every operation that takes one. nginx's rate limit answers 429 with
`{"detail": ...}` and a Retry-After on every route of the deployed API (nginx/): declared once,
here, for every operation.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.api.responses import RETRY_AFTER
from app.models import Problem, ValidationProblem

_REF = "#/components/schemas/{model}"
_FASTAPI_422 = ("HTTPValidationError", "ValidationError")


def _json(model: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=model)}}}


VALIDATION_FAILED = {
    "description": "The input is malformed: `detail` names each bad field, `errors` lists them.",
    "content": _json("ValidationProblem"),
}
UNREADABLE_BODY = {
    "description": "The body could not be decoded (FastAPI: not UTF-8 JSON).",
    "content": _json("Problem"),
}
RATE_LIMITED = {
    "description": "Too many requests from this client: the edge's rate limit (nginx), not the app.",
    "headers": RETRY_AFTER,
    "content": _json("Problem"),
}


def build(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_422:
        schemas.pop(name, None)
    for model in (Problem, ValidationProblem):
        for name, schema in model.model_json_schema(ref_template=_REF).pop("$defs", {}).items():
            schemas[name] = schema
        schemas[model.__name__] = {
            key: value for key, value in model.model_json_schema(ref_template=_REF).items() if key != "$defs"
        }
    for path in document["paths"].values():
        for operation in path.values():
            responses = operation["responses"]
            if "422" in responses:
                responses["422"] = VALIDATION_FAILED
            if "requestBody" in operation:
                responses["400"] = UNREADABLE_BODY
            responses["429"] = RATE_LIMITED
    app.openapi_schema = document
    return document
