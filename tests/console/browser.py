"""What the console's browser tests share: headless Chromium over
WebDriver, and the key form."""

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def chromium(downloads=None):
    options = webdriver.ChromeOptions()
    if downloads:
        options.add_experimental_option(
            "prefs", {"download.default_directory": downloads, "download.prompt_for_download": False}
        )
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    return driver, WebDriverWait(driver, 30)


def use_key(driver, key):
    box = driver.find_element(By.ID, "api-key")
    box.clear()
    box.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()


def unnamed_controls(driver):
    return [
        e.get_attribute("outerHTML")[:80]
        for e in driver.find_elements(By.CSS_SELECTOR, "input, button, select, textarea, canvas, audio")
        if e.is_displayed() and not e.accessible_name
    ]


def other_origins(driver):
    origin = driver.execute_script("return location.origin")
    requested = driver.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)"
    )
    return [r for r in requested if not r.startswith(origin)]


def console_errors(driver):
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "/v1/" not in entry["message"]
    ]


def screenshots(driver, shots, name):
    """Saves the page at 1280x800, 390 px wide, and whole at 1280 px wide;
    returns whether anything overflows sideways at 390 px."""
    overflow = False
    for width, height in [(1280, 800), (390, 844)]:
        driver.set_window_size(width, height)
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(f"{shots}/{name}-{width}.png")
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
    driver.set_window_size(1280, 800)
    tall = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(tall + 140, 6000))
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(f"{shots}/{name}-1280-full.png")
    driver.set_window_size(1280, 800)
    return overflow


def page_checks(driver):
    """What every page must hold to: controls named, nothing from another
    origin, no console error."""
    return {
        "unnamed_controls": unnamed_controls(driver),
        "other_origins": other_origins(driver),
        "console_errors": console_errors(driver),
    }


def tab_order(driver, presses=40):
    """The controls Tab reaches from the top of the page, in order, each as
    its tag and accessible name, and whether each showed a focus outline."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    body = driver.find_element("tag name", "body")
    body.click()
    reached = []
    for _ in range(presses):
        # Pressed on the page, not sent to the element: a file input takes
        # what is sent to it as a path to upload.
        ActionChains(driver).send_keys(Keys.TAB).perform()
        element = driver.switch_to.active_element
        entry = {
            "tag": element.tag_name,
            "name": element.accessible_name,
            "outlined": driver.execute_script(
                "return getComputedStyle(arguments[0]).outlineStyle !== 'none'", element
            ),
        }
        # Back at the first stop from another one: a full cycle. (A month
        # input's fields are consecutive stops of one element.)
        if reached and entry == reached[0] and reached[-1] != entry:
            break
        reached.append(entry)
    # Tab cycles through the page and the browser's own chrome (the body
    # stands for it): start the list at the page's first stop.
    controls = [e for e in reached if e["tag"] != "body"]
    first = next((i for i, e in enumerate(controls) if e["name"] == "Skip to the page"), 0)
    return controls[first:] + controls[:first]
