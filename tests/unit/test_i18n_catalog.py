"""The Simplified Chinese catalog covers every marked string, and the language helpers behave per locale.

The marked strings are extracted here with Babel's own extractor and ``babel.cfg`` (what ``pybabel
extract`` runs), so a string marked with ``_()`` / ``ngettext()`` / ``N_()`` and left without a
translation fails this test, whether or not the ``.pot`` file was regenerated.
"""

from __future__ import annotations

import collections
import datetime
import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from recexp.i18n import (DEFAULT_LANGUAGE, LANGUAGES, _, catalog_path, current_language, format_date, format_decimal,
                         format_integer, format_percent, format_timestamp, ngettext, set_language_resolver,
                         translations, use_language)
from recexp.models import MODELS
from recexp.params import param_label

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}


def _extracted() -> dict[str, tuple[str, ...]]:
    """msgid (singular) -> every form, for every string marked in app.py, pages/ and recexp/."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found = {}
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS):
        forms = message if isinstance(message, tuple) else (message,)
        found[forms[0]] = forms
    return found


def _zh_catalog():
    with catalog_path("zh").open("rb") as po:
        return read_po(po, locale="zh_CN")


def _fields(text: str) -> list[str]:
    """The ``str.format`` fields of ``text`` (name plus conversion and spec), sorted."""
    return sorted(f"{name}!{conversion}:{spec}" for _literal, name, spec, conversion in string.Formatter().parse(text)
                  if name is not None)


@pytest.fixture(scope="module")
def extracted():
    return _extracted()


def test_extraction_finds_the_pages_charts_and_report(extracted):
    assert len(extracted) > 700
    assert {"Strategy Lab", "Verdict on {score}", "Queued {n} run.", "Confusion matrices", "In business terms",
            "Language"} <= set(extracted)
    # declared by parameter specs, extracted without marking (recexp/i18n_extract.py): labels, help, options
    assert {"K neighbors", "Embedding dim", "Share of hidden units dropped during training.",
            "none: every class weighs the same"} <= set(extracted)


def test_the_zh_catalog_is_a_po_file_whose_path_names_zh():
    path = catalog_path("zh")
    assert path.suffix == ".po" and "zh" in str(path.relative_to(ROOT))


def test_every_marked_string_has_a_chinese_translation_with_the_same_placeholders(extracted):
    catalog = _zh_catalog()
    untranslated, fuzzy, placeholders = [], [], []
    for msgid, forms in extracted.items():
        entry = catalog.get(forms if len(forms) > 1 else msgid) or catalog.get(msgid)
        strings = () if entry is None else entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if entry is None or not all(s.strip() for s in strings):
            untranslated.append(msgid)
            continue
        if entry.fuzzy:
            fuzzy.append(msgid)
        if any(_fields(s) != _fields(forms[-1 if i else 0]) for i, s in enumerate(strings)) \
                or any(_fields(f) != _fields(forms[0]) for f in forms):
            placeholders.append(msgid)
    assert not untranslated, f"{len(untranslated)} marked strings lack a zh translation: {untranslated[:10]}"
    assert not fuzzy, f"fuzzy (unchecked) translations: {fuzzy[:10]}"
    assert not placeholders, f"translations whose placeholders differ from the English: {placeholders[:10]}"


def test_every_catalog_entry_is_translated_and_marked_in_the_code(extracted):
    catalog = _zh_catalog()
    entries = [m for m in catalog if m.id]
    assert entries and all((m.string if isinstance(m.string, tuple) else (m.string,))[0].strip() for m in entries)
    stale = [m.id for m in entries if (m.id[0] if isinstance(m.id, tuple) else m.id) not in extracted]
    assert not stale, f"entries no code marks any more (run pybabel update): {stale[:10]}"


def test_no_msgid_is_in_the_catalog_twice():
    """Branches append their entries and merge the catalog by union (.gitattributes): two branches adding the
    same msgid would leave it twice, and Babel would silently keep only the last translation."""
    text = catalog_path("zh").read_text(encoding="utf-8")
    msgids = ["".join(re.findall(r'"(.*)"', block)) for block in re.findall(r'^msgid ((?:".*"\n)+)', text, re.M)]
    twice = sorted(m for m, n in collections.Counter(msgids).items() if n > 1)
    assert len(msgids) > 1000 and not twice, f"msgids in the catalog twice: {twice[:10]}"


def test_parameter_widgets_show_the_declared_texts_translated():
    spec = MODELS["mlp"].params["dropout"]
    with use_language("zh"):
        assert (_(param_label("dropout")), _(spec.help)) == ("Dropout 比例", "训练时丢弃的隐藏单元比例。")


def test_translations_follow_the_chosen_language():
    assert current_language() == DEFAULT_LANGUAGE == "en" and set(LANGUAGES) == {"en", "zh"}
    assert _("Strategy Lab") == "Strategy Lab"
    with use_language("zh"):
        assert _("Strategy Lab") == "策略实验室"
        assert ngettext("Queued {n} run.", "Queued {n} runs.", 3).format(n=3) == "已将 3 次运行加入队列。"
        assert _("not a marked string") == "not a marked string"
        assert _("") == ""
        with use_language("fr"):                                  # unknown: English
            assert current_language() == "en"
    assert _("Strategy Lab") == "Strategy Lab"


def test_a_resolver_names_the_language_where_none_was_set():
    previous = set_language_resolver(lambda: "zh")
    try:
        assert _("Train") == "训练"
        with use_language("en"):
            assert _("Train") == "Train"
    finally:
        set_language_resolver(previous)               # the dashboard's, where recexp.ui.i18n was imported
    assert translations("en").gettext("Train") == "Train"


def test_numbers_and_dates_follow_the_locale():
    day = datetime.date(2026, 12, 3)
    assert (format_integer(1234567), format_decimal(0.5, 3), format_percent(0.125, 1)) == ("1,234,567", "0.500",
                                                                                          "12.5%")
    assert format_date(day) == "Dec 3, 2026"
    assert format_timestamp("2026-12-03T15:04:37.5+00:00").startswith("Dec 3, 2026, 3:04:37")
    assert format_timestamp("not a time") == "not a time"
    with use_language("zh"):
        assert format_date(day) == "2026年12月3日"
        assert format_timestamp("2026-12-03T15:04:37+00:00") == "2026年12月3日 15:04:37"
        assert format_integer(1234567) == "1,234,567" and format_percent(0.5) == "50%"
