"""The app without its request middleware: the benchmark's baseline."""

from app.core.config import get_settings
from app.main import create_app

app = create_app(get_settings(), middleware=False)
