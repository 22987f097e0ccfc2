"""Lab -> Train in a real Chromium: a strategy found by searching the Lab's picker, tuned and added with
"Add to grid", is in the Train page's grid under the same name, with its parameters."""

from playwright.sync_api import expect


def test_add_a_tuned_strategy_to_the_train_grid(app_url, lab_on_300_rows):
    page = lab_on_300_rows
    page.locator('[data-testid="stButtonGroup"]').get_by_text("Balancing", exact=True).click()   # family filter
    strategy = page.get_by_role("combobox", name="Strategy", exact=True)
    strategy.click()
    strategy.press_sequentially("adasyn")                                 # search by id
    page.get_by_role("option", name="ADASYN (adasyn) · balancing", exact=True).click()
    n_neighbors = page.get_by_role("spinbutton", name="N neighbors")
    expect(n_neighbors).to_be_visible(timeout=60_000)
    n_neighbors.fill("3")
    n_neighbors.press("Enter")
    expect(page.get_by_text("Training rows after")).to_be_visible(timeout=60_000)
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Add to grid").click()
    expect(page.get_by_text("Train page grid: No strategy (baseline) (none) · baseline, ADASYN (adasyn) · "
                            "balancing")).to_be_visible(timeout=60_000)

    page.get_by_role("link", name="Open the Train page").click()
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible(timeout=60_000)
    picker = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Strategies to compare")
    expect(picker.get_by_text("ADASYN (adasyn) · balancing")).to_be_visible(timeout=60_000)
    expect(picker.get_by_text("No strategy (baseline) (none) · baseline")).to_be_visible()
    page.get_by_text("Parameters of ADASYN (adasyn) · balancing").click()
    expect(page.get_by_role("spinbutton", name="N neighbors")).to_have_value("3", timeout=30_000)
    assert page.get_by_text("Traceback").count() == 0
