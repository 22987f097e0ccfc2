"""A Chinese shop export (GB18030, headers 用户ID, 商品ID, 商品类目ID, 行为类型, 时间戳 plus 商品类别 and
商品名称) uploaded in a real Chromium gets the right column roles, each marked with its confidence."""

from playwright.sync_api import expect

ROLES = {"user": "用户ID", "item": "商品ID", "category": "商品类目ID", "behavior": "行为类型", "timestamp": "时间戳"}


def test_chinese_export_upload_chooses_the_right_roles(app_url, page, chinese_export):
    path = chinese_export("gb18030", rows=200)
    page.goto(app_url)
    expect(page.get_by_role("heading", name="Data", exact=True)).to_be_visible(timeout=60_000)
    page.get_by_text("Upload a file").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    expect(page.get_by_text(f"Read {path.name}: 200 rows kept")).to_be_visible(timeout=60_000)

    page.get_by_text("Column mapping (inferred; change a role and apply)").click()
    for role, column in ROLES.items():
        expect(page.get_by_role("combobox", name=role, exact=True)).to_have_value(column)
    expect(page.get_by_text("95% sure: header name '用户ID'; values fit")).to_be_visible()
    assert page.get_by_text("a guess").count() == 0
    assert page.get_by_text("Traceback").count() == 0
