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
- The CLI writes English unless told otherwise (``python -m recexp compare --lang zh --html report.html``).

Sentences made in one place and read in another
-----------------------------------------------
The library's sentences (errors, strategy notes, validation warnings, progress) are marked like any
other: ``raise InvalidParameterError(_("k_neighbors must be below {n}, got {k}.").format(n=n, k=k))``.
A text is made in the language of the code that runs it; four rules make it reach the reader in theirs:

1. **Threads carry the language.** :class:`recexp.background.BackgroundTask` runs its work in the language
   of the session that started it (:func:`in_current_language` wraps any other callable the same way).
   A plain ``threading.Thread`` runs in English: start a thread with :func:`in_current_language`.
2. **A text remembers how it was made.** ``_()`` and ``ngettext()`` return a :class:`Text` (a ``str``)
   that keeps its msgid and, after ``.format()``, its fields; :func:`localized` writes it again in the
   language shown now. ``str(error)`` of a :class:`~recexp.errors.RecexpError` does so, so an error raised
   in English (a worker, the CLI's thread) reads in the viewer's language wherever a page shows it.
   A page shows a sentence it kept (a Strategy Lab preview kept across reruns) with ``localized(note)``, so
   a language switch writes it again. Joining or concatenating texts (``"; ".join``, ``+``, f-strings) makes
   a plain ``str`` that forgets: format into a marked template instead (``_("{first}; {second}").format(...)``).
3. **Stored texts keep their recipe.** The worker process writes in English; the run store keeps a
   run's error and progress message as :func:`dumps_text` (a JSON recipe for a :class:`Text`, plain text
   otherwise) and reads them back with :func:`loads_text`, in the reader's language. Artifacts meant for
   people and programs (``consistency.json``) keep numbers and names; pages write the sentence at display
   (e.g. :func:`recexp.consistency.consistency_line`).
4. **Caches take the language.** A value cached with ``st.cache_data`` that holds sentences (a load
   report's warnings, a comparison's verdicts) takes :func:`current_language` as a cache argument, or it
   comes back in the language of the session that computed it first.

``tests/unit/test_i18n_library.py`` fails while a recexp error is made with an unmarked literal, or while a
function that calls ``_()`` also binds ``_`` as a throwaway name (``for _ in ...``, ``a, _ = ...``): that makes
``_`` local to the function and the call fails.

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
import json
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


class Text(str):
    """A translated text that remembers its msgid (and plural form and count) and, once formatted, its
    fields, so that :func:`localized` can write it again in another language.

    It is the ``str`` it was made as (compare, hash, slice and show it as one); ``.format()`` returns a
    :class:`Text` again. Any other operation (``+``, ``join``, f-strings) returns a plain ``str``.

    >>> with use_language("zh"):
    ...     text = _("Language")
    >>> text, localized(text, "en")
    ('语言', 'Language')
    """

    msgid: str
    plural: str | None
    n: int | None
    args: tuple | None                                       # None: never formatted
    fields: dict

    def __new__(cls, value: str, msgid: str, plural: str | None = None, n: int | None = None,
                args: tuple | None = None, fields: dict | None = None) -> Text:
        text = super().__new__(cls, value)
        text.msgid, text.plural, text.n = msgid, plural, n
        text.args, text.fields = None if args is None else tuple(args), dict(fields or {})
        return text

    def __reduce__(self):
        return Text, (str(self), self.msgid, self.plural, self.n, self.args, self.fields)

    def format(self, *args, **fields) -> Text:               # str.format, remembered
        return Text(str.format(self, *args, **fields), self.msgid, self.plural, self.n,
                    tuple(_kept(a) for a in args), {k: _kept(v) for k, v in fields.items()})

    def render(self, language: str) -> str:
        """This text written in ``language`` (its fields too, where they are texts)."""
        catalog = translations(language)
        template = (catalog.gettext(self.msgid) if self.plural is None
                    else catalog.ngettext(self.msgid, self.plural, self.n))
        if self.args is None:
            return template
        try:
            return template.format(*(localized(a, language) for a in self.args),
                                   **{k: localized(v, language) for k, v in self.fields.items()})
        except (IndexError, KeyError, ValueError):           # a translation that lost a field: the text as made
            return str(self)


#: Field values a :class:`Text` keeps as they are (anything else is kept as its ``str``, which is what a plain
#: ``{field}`` shows: a text can then always be pickled, cached and stored).
_PLAIN = (str, int, float, bool, type(None))


def _kept(value):
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, _PLAIN) for v in value):
        return type(value)(value)
    return str(value)


def localized(value, language: str | None = None):
    """``value`` written in ``language`` (default: the current one) where it is a :class:`Text`; any other
    value as it is."""
    if not isinstance(value, Text):
        return value
    return Text(value.render(language or current_language()), value.msgid, value.plural, value.n, value.args,
                value.fields)


def _(message: str) -> str:
    """``message`` in the current language (as written where it has no translation), as a :class:`Text`."""
    if not message:
        return message
    return Text(translations(current_language()).gettext(message), message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the current language (Chinese has one form)."""
    return Text(translations(current_language()).ngettext(singular, plural, n), singular, plural, n)


#: The key that tells a stored :class:`Text` recipe (:func:`dumps_text`) from plain stored text.
_RECIPE = "recexp_text"


def _recipe(value):
    if not isinstance(value, Text):
        return value if isinstance(value, _PLAIN) else list(value) if isinstance(value, list | tuple) else str(value)
    return {_RECIPE: value.msgid, "plural": value.plural, "n": value.n, "text": str(value),
            "args": None if value.args is None else [_recipe(a) for a in value.args],
            "fields": {k: _recipe(v) for k, v in value.fields.items()}}


def _from_recipe(value):
    if not isinstance(value, dict) or _RECIPE not in value:
        return value
    args = value.get("args")
    return Text(value["text"], value[_RECIPE], value.get("plural"), value.get("n"),
                None if args is None else tuple(_from_recipe(a) for a in args),
                {k: _from_recipe(v) for k, v in value.get("fields", {}).items()})


def dumps_text(value: str | None) -> str | None:
    """``value`` as stored text: a :class:`Text` as a JSON recipe :func:`loads_text` writes again in the
    reader's language, a plain string (or ``None``) as it is."""
    return json.dumps(_recipe(value), ensure_ascii=False) if isinstance(value, Text) else value


def loads_text(stored: str | None) -> str | None:
    """What :func:`dumps_text` stored, in the current language (plain text comes back as it is)."""
    if not stored or not stored.startswith("{") or f'"{_RECIPE}"' not in stored:
        return stored
    try:
        recipe = json.loads(stored)
    except ValueError:
        return stored
    return localized(_from_recipe(recipe)) if isinstance(recipe, dict) and _RECIPE in recipe else stored


def in_current_language(function: Callable) -> Callable:
    """``function`` wrapped to run in the language current now, wherever it is called later (another
    thread: ``threading.Thread(target=in_current_language(work))``)."""
    language = current_language()

    def run(*args, **kwargs):
        with use_language(language):
            return function(*args, **kwargs)
    return run


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


__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "LOCALES", "LOCALE_DIR", "N_", "Text", "_", "catalog_path",
           "current_language", "dumps_text", "format_date", "format_datetime", "format_decimal", "format_integer",
           "format_percent", "format_timestamp", "in_current_language", "loads_text", "locale", "localized",
           "ngettext", "set_language_resolver", "translations", "use_language"]
