"""MkDocs hook: render the Sphinx roles of the docstrings (``:meth:`stop```) as plain code.

The library's docstrings follow the Google convention with Sphinx roles for
names; mkdocstrings leaves the roles as text. This drops the role and, as
Sphinx does for ``~``, the module path.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:attr|class|data|exc|func|meth|mod|obj):<code>(~?)([\w.]+)</code>")


def _plain(match: re.Match[str]) -> str:
    tilde, name = match.groups()
    return f"<code>{name.rsplit('.', 1)[-1] if tilde else name}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    """Replace every ``:role:<code>name</code>`` with ``<code>name</code>``."""
    return _ROLE.sub(_plain, html)
