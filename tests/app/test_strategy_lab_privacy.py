"""The Strategy Lab's synthesis report under differential privacy: epsilon requested and spent, delta, the
membership-inference AUC with its reading, and the id policy of the generated rows."""

from __future__ import annotations

from recexp.strategies import STRATEGIES
from recexp.ui.params import widget_key


def test_a_private_vae_shows_its_epsilon_delta_membership_auc_and_id_policy(lab, run_preview):
    cls = STRATEGIES["vae"]
    lab.selectbox(key="lab_strategy").set_value("vae")
    lab.run()
    lab.number_input(key=widget_key("lab", cls, "epochs")).set_value(1)
    lab.number_input(key=widget_key("lab", cls, "eval_every")).set_value(0)
    lab.toggle(key=widget_key("lab", cls, "epsilon", "set")).set_value(True)
    lab.run()
    lab.number_input(key=widget_key("lab", cls, "epsilon", "value")).set_value(2.5)
    lab.run()
    run_preview(lab)
    assert not lab.exception, lab.exception
    assert not lab.error, [e.value for e in lab.error]
    metrics = {m.label: m.value for m in lab.metric}
    assert metrics["Epsilon requested"] == "2.500"
    assert 2.0 <= float(metrics["Epsilon spent"]) <= 2.5
    assert 0 < float(metrics["Delta"]) < 0.01                         # 1 / the preview's training rows
    assert 0.0 <= float(metrics["Membership inference AUC"]) <= 1.0
    captions = [c.value for c in lab.caption]
    assert any(c.startswith("Membership inference AUC ") for c in captions)
    assert any("Ids of generated rows: new ids" in c for c in captions)
    assert any("The epsilon covers the trained network weights only" in c for c in captions)
    shown = captions + [i.value for i in lab.info] + [m.value for m in lab.markdown]
    assert any("trained with differential privacy (DP-SGD, Opacus) for 1 epoch:" in t for t in shown)


def test_without_epsilon_the_privacy_block_says_off(lab, run_preview):
    lab.selectbox(key="lab_strategy").set_value("gaussian_copula")
    lab.run()
    run_preview(lab)
    assert not lab.exception, lab.exception
    metrics = {m.label: m.value for m in lab.metric}
    assert metrics["Epsilon requested"] == metrics["Epsilon spent"] == "off"
    assert 0.0 <= float(metrics["Membership inference AUC"]) <= 1.0
    assert not any("The epsilon covers" in c.value for c in lab.caption)
