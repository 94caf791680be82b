"""Drives the console's Generations page in headless Chromium and prints
what it saw as JSON, for tests/console.rs to check.

Usage: generations.py URL GENERATOR_KEY LABEL_KEY RECORDING REQUESTER SCREENSHOT_DIR

Requests a remix (tempo 1.05) that the catalog licenses and follows it to
its output; then one it does not (tempo 1.9), then one with a label key.
"""

import json
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from browser import chromium, page_checks, screenshots, use_key

url, generator, label, recording, requester, shots = sys.argv[1:7]
driver, wait = chromium()


def request(tempo):
    for field, value in [("recording", recording), ("requested-by", requester), ("tempo-rate", tempo)]:
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    Select(driver.find_element(By.ID, "kind")).select_by_value("remix")
    driver.find_element(By.CSS_SELECTOR, "#generation-form button[type=submit]").click()
    wait.until(
        lambda d: any(
            d.find_element(By.ID, "job-status").text.startswith(p)
            for p in ("job ", "Not signed", "This API key", "The server", "Too many")
        )
    )
    return {
        "status": driver.find_element(By.ID, "job-status").text,
        "progress": [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#progress li")],
    }


seen = {}
try:
    driver.set_window_size(1280, 800)
    driver.get(url + "generations")
    use_key(driver, generator)
    seen["licensed"] = request("1.05")
    wait.until(lambda d: d.find_element(By.ID, "output-section").is_displayed())
    wait.until(
        lambda d: d.execute_script("return document.getElementById('player').readyState >= 1")
    )
    seen["player"] = driver.execute_script(
        "const p = document.getElementById('player'); return [p.src.slice(0, 5), p.duration]"
    )
    facts = driver.find_elements(By.CSS_SELECTOR, "#output-facts dt, #output-facts dd")
    seen["output"] = dict(zip([f.text for f in facts[::2]], [f.text for f in facts[1::2]]))
    seen["narrow_overflow"] = screenshots(driver, shots, "generations")
    seen["refused"] = request("1.9")
    use_key(driver, label)
    seen["as_label"] = request("1.05")
    seen.update(page_checks(driver))
finally:
    driver.quit()

print(json.dumps(seen))
