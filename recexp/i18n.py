"""The language of recexp's user-facing text (English or 简体中文), and numbers and dates in that locale.

English is written in the code; other languages live in gettext catalogs,
``recexp/locale/<locale>/LC_MESSAGES/recexp.po``, read with Babel when first needed (no compile step,
no ``.mo`` files). A message without a translation shows in English.

The language of a call is, in order: the one set with :func:`use_language` (the HTML report, tests,
the CLI), else the one a resolver reports (the dashboard registers one that reads the session's
choice, see :mod:`recexp.ui.i18n`), else English.

Developer guide
---------------
Mark every sentence, label, heading, help text and chart title a person reads::

    from recexp.i18n import _, ngettext

    st.subheader(_("Per class"))
    st.caption(_("{rows} rows kept").format(rows=format_integer(n)))      # named placeholders, never f-strings
    st.info(ngettext("{n} run queued.", "{n} runs queued.", n).format(n=n))

- Data values stay as they are (behaviour names such as ``pv`` or ``buy``, column names, strategy ids).
- A module-level constant is marked with ``N_("...")`` (no translation at import time) and translated
  where it is shown: ``_(CONSTANT)``.
- Numbers and dates in sentences go through :func:`format_integer`, :func:`format_decimal`,
  :func:`format_percent`, :func:`format_date` and :func:`format_timestamp`.
- Parameter specs need no marking: their ``help`` texts, ``Choice`` option texts and widget labels
  (:func:`recexp.params.param_label`) are extracted from the declarations (``recexp/i18n_extract.py``)
  and translated where :mod:`recexp.ui.params` draws them.
- A widget's ``format_func`` gets texts built while the page draws (``{value: _(text) ...}.get``), not a
  lambda that calls ``_()``: Streamlit may format values outside the session's run, in English.
- Never put ``_("...")`` inside an f-string: ``pybabel extract`` does not see it there.
- A value cached with ``st.cache_data`` that holds sentences (e.g. a comparison's verdicts) takes the
  language as a cache argument (:func:`current_language`), or it comes back in the language of the
  session that computed it first.
- The CLI writes English unless told otherwise (``python -m recexp compare --lang zh --html report.html``).

After adding or changing marked strings, from the repository root::

    PYTHONPATH=. pybabel extract -F babel.cfg -o recexp/locale/recexp.pot --no-location --sort-output \\
        --omit-header --project recexp .
    pybabel update -i recexp/locale/recexp.pot -d recexp/locale -D recexp -l zh_CN --no-fuzzy-matching \\
        --ignore-obsolete --width 120
    # then fill every empty msgstr in recexp/locale/zh_CN/LC_MESSAGES/recexp.po (no "#, fuzzy" left)

``tests/unit/test_i18n_catalog.py`` runs the same extraction and fails while a marked string has no
Chinese translation or a translation changes the placeholders; ``tests/unit/ui/test_i18n_lint.py`` fails
while a page passes an unmarked literal to a Streamlit display call (or a marked literal sits in an
f-string).
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

#: Language code (the URL's ``lang``) -> its name, written in that language.
LANGUAGES = {"en": "English", "zh": "简体中文"}
DEFAULT_LANGUAGE = "en"
#: Language code -> the Babel locale its numbers, dates and catalog follow.
LOCALES = {"en": "en_US", "zh": "zh_CN"}
#: The folder of the catalogs (``<locale>/LC_MESSAGES/recexp.po``) and the template ``recexp.pot``.
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "recexp"

_chosen: ContextVar[str | None] = ContextVar("recexp_language", default=None)
_resolver: Callable[[], str | None] | None = None


def catalog_path(language: str) -> Path:
    """The ``.po`` file of ``language`` (e.g. ``recexp/locale/zh_CN/LC_MESSAGES/recexp.po``)."""
    return LOCALE_DIR / LOCALES[language] / "LC_MESSAGES" / f"{DOMAIN}.po"


def set_language_resolver(resolver: Callable[[], str | None] | None) -> Callable[[], str | None] | None:
    """Register the function that names the current language where :func:`use_language` set none; returns
    the one it replaces (to put it back)."""
    global _resolver
    previous, _resolver = _resolver, resolver
    return previous


def current_language() -> str:
    """The language text is shown in now: a key of :data:`LANGUAGES`."""
    language = _chosen.get()
    if language is None and _resolver is not None:
        language = _resolver()
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


@contextmanager
def use_language(language: str) -> Iterator[None]:
    """Show text in ``language`` inside the ``with`` block (an unknown code means English)."""
    token = _chosen.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _chosen.reset(token)


@lru_cache(maxsize=None)
def translations(language: str) -> gettext.NullTranslations:
    """The translations of ``language``, read from its ``.po`` file (English: the text as written)."""
    path = catalog_path(language) if language in LOCALES else None
    if path is None or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=LOCALES[language], domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)              # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _(message: str) -> str:
    """``message`` in the current language (as written where it has no translation)."""
    if not message:
        return message
    return translations(current_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the current language (Chinese has one form)."""
    return translations(current_language()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it (a constant translated where it is shown)."""
    return message


def locale() -> str:
    """The Babel locale of the current language (``en_US``, ``zh_CN``)."""
    return LOCALES[current_language()]


def format_integer(value: int | float) -> str:
    """A count with the locale's grouping: ``12,345``."""
    return babel_numbers.format_decimal(int(value), locale=locale())


def format_decimal(value: float, digits: int = 2) -> str:
    """A number with exactly ``digits`` decimals and the locale's separators: ``1,234.50``."""
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return babel_numbers.format_decimal(value, format=pattern, locale=locale(), decimal_quantization=True)


def format_percent(value: float, digits: int = 0) -> str:
    """A share as a percentage in the locale: ``0.125`` -> ``12.5%`` with one digit."""
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "") + "%"
    return babel_numbers.format_percent(value, format=pattern, locale=locale())


def format_date(value: date | datetime, format: str = "medium") -> str:
    """A date in the locale: ``Dec 3, 2026`` / ``2026年12月3日``."""
    return babel_dates.format_date(value, format=format, locale=locale())


def format_datetime(value: datetime, format: str = "medium") -> str:
    """A date and time in the locale: ``Dec 3, 2026, 3:04:37 PM`` / ``2026年12月3日 15:04:37``."""
    return babel_dates.format_datetime(value, format=format, locale=locale())


def format_timestamp(iso: str) -> str:
    """An ISO 8601 timestamp (as the run store and the validation report keep them) as a date and time in
    the locale; text that does not parse is returned as it is."""
    try:
        moment = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return iso
    return format_datetime(moment.replace(tzinfo=None))


__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "LOCALES", "LOCALE_DIR", "N_", "_", "catalog_path", "current_language",
           "format_date", "format_datetime", "format_decimal", "format_integer", "format_percent", "format_timestamp",
           "locale",
           "ngettext", "set_language_resolver", "translations", "use_language"]
