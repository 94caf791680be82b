"""Drives the console's Dispute page in headless Chromium and prints what
it saw as JSON, for tests/console.rs to check.

Usage: dispute.py URL AUDITOR_KEY LABEL_KEY SCREENSHOT_DIR FILE...

Each FILE is uploaded in turn, first with the auditor's key; the first is
uploaded again with the label's key.
"""

import json
import sys
import time

from selenium.webdriver.common.by import By

from browser import chromium, page_checks, screenshots, use_key

url, auditor, label, shots, *files = sys.argv[1:]
driver, wait = chromium()


def table(table_id):
    return [
        [c.text for c in r.find_elements(By.TAG_NAME, "td")]
        for r in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")
    ]


def upload(path):
    """Uploads `path` and returns what the page shows once it is done."""
    box = driver.find_element(By.ID, "audio-file")
    started = time.monotonic()
    box.send_keys(path)
    wait.until(lambda d: not d.find_element(By.ID, "upload-status").text.startswith("Tracing"))
    answered_s = time.monotonic() - started
    status = driver.find_element(By.ID, "upload-status").text
    seen = {"status": status, "answered_s": answered_s}
    if driver.find_element(By.ID, "answer").is_displayed():
        wait.until(lambda d: "Verifying" not in d.find_element(By.ID, "verified").text)
        facts = driver.find_elements(By.CSS_SELECTOR, "#derivative dt, #derivative dd")
        seen["derivative"] = dict(zip([f.text for f in facts[::2]], [f.text for f in facts[1::2]]))
        seen["verified"] = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#verified li")]
        seen["inputs"] = table("inputs")
        seen["steps"] = table("steps")
        seen["earnings"] = table("earnings")
    wait.until(lambda d: d.find_element(By.ID, "spectrogram-section").is_displayed())
    return seen


seen = {}
try:
    driver.set_window_size(1280, 800)
    driver.get(url)
    use_key(driver, auditor)
    seen["uploads"] = [upload(files[0])]
    seen["narrow_overflow"] = screenshots(driver, shots, "dispute")
    seen["uploads"] += [upload(path) for path in files[1:]]
    use_key(driver, label)
    seen["as_label"] = upload(files[0])
    seen.update(page_checks(driver))
finally:
    driver.quit()

print(json.dumps(seen))
