"""The web shell in real Chromium: sign-in per role, navigation, language switch, phones, errors."""

import re

import pytest

from tests.browser.conftest import sign_in

REGISTRY_NAV = ["organisations", "workers"]
EXPECTED_NAV = {
    "admin": ["dashboard", "recipients", "intake", "matching", "schedule", "alerts", "exceptions", "reports", "performance", *REGISTRY_NAV, "imports", "catalog", "users",
              "audit", "integrity"],
    "manager": ["dashboard", "recipients", "intake", "matching", "schedule", "alerts", "exceptions", "reports", "performance", *REGISTRY_NAV, "imports", "catalog"],
    "manager.dagang": ["dashboard", "recipients", "intake", "matching", "schedule", "alerts", "exceptions", "reports", "performance",
                       *REGISTRY_NAV, "imports", "catalog"],
    "provider": ["dashboard", "recipients", "referrals", "schedule", "alerts", "exceptions", "reports", "scorecard", *REGISTRY_NAV, "imports", "catalog"],
    "caregiver": ["dashboard", "route", "catalog"],
    "auditor": ["dashboard", "recipients", "intake", "schedule", "alerts", "exceptions", "reports", *REGISTRY_NAV, "catalog", "audit", "integrity"],
}


@pytest.mark.browser
@pytest.mark.parametrize("username", sorted(EXPECTED_NAV))
def test_each_role_signs_in_sees_its_navigation_and_signs_out(page, live_server, username):
    sign_in(page, live_server, username)
    page.wait_for_url(f"{live_server.url}/")
    nav = page.locator("nav [data-nav]").evaluate_all("els => els.map(e => e.dataset.nav)")
    assert nav == EXPECTED_NAV[username]
    assert page.locator("[data-testid=whoami]").is_visible()
    page.get_by_role("button", name="退出").click()
    page.wait_for_url(re.compile(r"/login"))
    assert page.locator(".flash.success").inner_text() == "您已退出登录。"
    page.goto(f"{live_server.url}/")
    assert "/login" in page.url  # signed out for real


@pytest.mark.browser
def test_wrong_password_shows_an_error(page, live_server):
    sign_in(page, live_server, "manager", "not-the-password")
    assert page.locator(".flash.error").inner_text() == "用户名或密码错误。"
    assert "/login" in page.url


@pytest.mark.browser
def test_catalogue_in_chinese_then_english_then_chinese(page, live_server):
    sign_in(page, live_server, "manager")
    page.get_by_role("link", name="服务清单").first.click()
    assert page.locator("[data-testid=catalog-summary]").inner_text() == "5 个服务类别，21 个服务项目"
    assert page.locator("tr[data-type]").count() == 21
    assert "助餐" in page.locator("tr[data-type=LC01]").inner_text()
    page.click("[data-lang=en]")
    page.wait_for_selector("html[lang=en]")
    assert page.locator("[data-testid=catalog-summary]").inner_text() == "5 categories, 21 service types"
    assert "Meal delivery" in page.locator("tr[data-type=LC01]").inner_text()
    assert page.get_by_role("button", name="Sign out").is_visible()
    page.click("[data-lang=zh]")
    page.wait_for_selector("html[lang=zh-CN]")
    assert "助餐" in page.locator("tr[data-type=LC01]").inner_text()


@pytest.mark.browser
def test_phone_menu_and_catalogue_fit_the_screen(phone, live_server):
    sign_in(phone, live_server, "caregiver")
    phone.wait_for_url(f"{live_server.url}/")
    nav = phone.locator("nav.nav")
    assert not nav.is_visible()  # folded away on a phone
    phone.click("label.menu-button")
    assert nav.is_visible()
    nav.locator("[data-nav=catalog]").click()
    phone.wait_for_url(re.compile(r"/catalog$"))
    # The page itself never scrolls sideways; wide tables scroll inside their own box.
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.browser
def test_admin_creates_a_user_who_can_then_sign_in(page, live_server):
    sign_in(page, live_server, "admin")
    page.goto(f"{live_server.url}/admin/users")
    page.fill("input[name=username]", "zhang.wei")
    page.fill("input[name=display_name]", "张伟")
    page.select_option("select[name=role]", "auditor")
    page.fill("input[name=password]", "a-long-password-1")
    page.get_by_role("button", name="创建用户").click()
    assert "已创建用户 zhang.wei" in page.locator(".flash.success").inner_text()
    assert page.locator("tr[data-user='zhang.wei']").is_visible()
    page.get_by_role("button", name="退出").click()
    sign_in(page, live_server, "zhang.wei", "a-long-password-1")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("[data-testid=role]").inner_text().startswith("审计/评估人员")


@pytest.mark.browser
def test_a_provider_cannot_open_admin_pages(page, live_server):
    sign_in(page, live_server, "provider")
    page.wait_for_url(f"{live_server.url}/")
    response = page.goto(f"{live_server.url}/admin/users")
    assert response.status == 403
    assert "无权操作" in page.locator("h1").inner_text()


@pytest.mark.browser
def test_unknown_page_is_a_friendly_404(page, live_server):
    response = page.goto(f"{live_server.url}/no/such/page")
    assert response.status == 404
    assert "未找到" in page.locator("h1").inner_text()


@pytest.mark.browser
def test_a_provider_opens_the_alert_inbox_from_the_menu_and_filters_it(page, live_server):
    sign_in(page, live_server, "provider")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("[data-card=alerts] [data-testid=open-alerts]").inner_text().isdigit()
    page.click("nav [data-nav=alerts]")
    page.wait_for_url(re.compile(r"/alerts$"))
    assert page.locator("h1").inner_text().startswith("预警")
    assert page.locator("nav [data-nav=alerts]").get_attribute("aria-current") == "page"
    page.select_option("select[name=show]", "all")
    page.select_option("select[name=kind]", "late")
    page.get_by_role("button", name="筛选").click()
    page.wait_for_url(re.compile(r"/alerts\?.*show=all"))
    assert page.locator("select[name=kind]").input_value() == "late"
    assert page.locator("tr[data-alert]:not([data-kind=late])").count() == 0
