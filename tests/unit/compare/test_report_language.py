"""The HTML report in 简体中文: headings, verdicts, method, business statements, figure titles and the date
in Chinese, the ``lang`` attribute set; the English report is unchanged. On real runs (yeast_me2, 3 strategies
x 3 seeds of a logistic regression)."""

from __future__ import annotations

import re

import pytest

from recexp.cli import main
from recexp.compare import compare
from recexp.i18n import use_language

CJK = re.compile(r"[\u4e00-\u9fff]")
EXPERIMENT = "report language: 3 strategies x 3 seeds"


@pytest.fixture(scope="module")
def store(tmp_path_factory, yeast_grid):
    return yeast_grid.build(tmp_path_factory.mktemp("report_language_workspace"), EXPERIMENT)


def test_the_report_in_chinese(store):
    with use_language("zh"):
        comparison = compare(store, experiment=EXPERIMENT, n_bootstrap=0)
        text = comparison.to_html()
    assert "<html lang='zh-CN'>" in text
    headings = re.findall(r"<h2>(.*?)</h2>", text)
    assert len(headings) >= 10 and all(CJK.search(h) for h in headings), headings
    assert {"指标", "业务解读", "混淆矩阵", "各类别召回率", "运行"} <= set(headings)
    assert any(h.startswith("1 的 PR-AUC 上的结论（主要指标，") for h in headings)
    verdicts = re.findall(r"<li class='verdict'>(.*?)</li>", text)
    assert len(verdicts) == 2 and all("无可检测的差异" in v or "相对 none 将" in v for v in verdicts), verdicts
    assert "<b>方法。</b> 对完整测试集得分的逐种子差异做配对 t 检验" in text and "检验功效：" in text
    statements = re.findall(r"<li>(.*?)</li>", text)
    assert statements and all("采取行动" in s for s in statements)
    assert re.search(r"由 recexp 于 \d{4}年\d{1,2}月\d{1,2}日", text)               # the date in the zh locale
    for english in ("In business terms", "Verdicts on", "Scores with 95% intervals", "No detectable difference",
                    "Paired t-test over", "acting on the top"):
        assert english not in text


def test_the_english_report_is_as_before(store):
    text = compare(store, experiment=EXPERIMENT, n_bootstrap=0).to_html()
    assert "<html lang='en'>" in text and "<h2>In business terms</h2>" in text
    assert "Verdicts on PR-AUC of 1 (primary score, the default for these classes)" in text
    assert not CJK.search(text.split("<script", 1)[0] + text.rsplit("</script>", 1)[-1])


def test_the_cli_writes_the_report_in_chinese(store, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECEXP_HOME", str(store.home))
    target = tmp_path / "report.html"
    assert main(["compare", "--experiment", EXPERIMENT, "--bootstrap", "0", "--html", str(target), "--lang", "zh"]) == 0
    text = target.read_text(encoding="utf-8")
    assert "<html lang='zh-CN'>" in text and "<h2>业务解读</h2>" in text
    verdicts = [line for line in capsys.readouterr().out.splitlines() if line.startswith("verdict: ")]
    assert len(verdicts) == 2 and all(CJK.search(line) for line in verdicts), verdicts
