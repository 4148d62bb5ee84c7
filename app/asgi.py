"""The application servers run: `gunicorn app.asgi:app`, `uvicorn app.asgi:app`."""

from app.core.config import get_settings
from app.main import create_app

app = create_app(get_settings())
