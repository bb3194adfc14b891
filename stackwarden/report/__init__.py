"""Pure renderers of an audit: markdown in the seed report's shape, and JSON."""

from stackwarden.report.json import render_json
from stackwarden.report.markdown import render_markdown

__all__ = ["render_json", "render_markdown"]
