"""Babel extraction for recexp's library modules: the marked strings, plus the texts declared as data.

``babel.cfg`` runs :func:`extract` over ``recexp/**.py``. It yields what Babel's own Python extractor
finds (``_()``, ``ngettext()``, ``N_()``) and, without any marking in the library code, the texts that
parameter specs declare (:mod:`recexp.params`) and the dashboard shows through
:func:`recexp.ui.params.param_widgets`:

- every ``help="..."`` of a spec (``Int(1, None, help="Neighbours used ...")``);
- every option text of a ``Choice({...: "text"})``;
- the widget label of every parameter in a ``params = {...}`` dict (``"k_neighbors"`` -> ``"K neighbors"``,
  the text :func:`recexp.params.param_label` makes);
- the ``summary`` and ``description`` sentences of registered classes (strategies, models, tasks,
  importance methods), which the pages show with ``_(cls.summary)``. Their ``title`` stays as it is: a
  name (``SMOTE``, ``TracIn``).

Used only when the catalog is extracted (``pybabel extract`` and ``tests/unit/test_i18n_catalog.py``).
"""

from __future__ import annotations

import ast
import io
from collections.abc import Iterator
from typing import Any

from babel.messages.extract import extract_python

from recexp.params import param_label

#: The spec types of :mod:`recexp.params`.
SPEC_TYPES = {"Int", "Float", "Choice", "Bool", "Text", "Optional", "Union", "Mapping"}
#: Class attributes that describe a registered class in a sentence (strategies, models, tasks, methods).
DESCRIBING = {"summary", "description"}


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _declared_texts(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in SPEC_TYPES:
            for keyword in node.keywords:
                if keyword.arg == "help" and isinstance(keyword.value, ast.Constant) and keyword.value.value:
                    yield node.lineno, keyword.value.value
            if _name(node.func) == "Choice" and node.args and isinstance(node.args[0], ast.Dict):
                for value in node.args[0].values:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value:
                        yield value.lineno, value.value
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                targets = statement.targets if isinstance(statement, ast.Assign) else \
                    [statement.target] if isinstance(statement, ast.AnnAssign) else []
                value = getattr(statement, "value", None)
                if (any(_name(t) in DESCRIBING for t in targets) and isinstance(value, ast.Constant)
                        and isinstance(value.value, str) and value.value):
                    yield statement.lineno, value.value
        if (isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict)
                and any(_name(t) == "params"
                        for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))):
            for key in node.value.keys:
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    yield key.lineno, param_label(key.value)


def extract(fileobj, keywords: Any, comment_tags: Any, options: dict) -> Iterator[tuple]:
    """Babel extraction method (see the module docstring)."""
    source = fileobj.read()
    yield from extract_python(io.BytesIO(source), keywords, comment_tags, options)
    for lineno, text in _declared_texts(ast.parse(source)):
        yield lineno, None, text, []
