"""Drives the console's Statements page in headless Chromium and prints
what it saw as JSON, for tests/console.rs to check.

Usage: statements.py URL AUDITOR_KEY LABEL_KEY PERIOD SCREENSHOT_DIR DOWNLOAD_DIR LABEL_CSV
"""

import json
import os
import sys
import time

from selenium.webdriver.common.by import By

from browser import chromium, page_checks, screenshots, use_key

url, auditor, label, period, shots, downloads, label_csv = sys.argv[1:8]
driver, wait = chromium(downloads)


def show(period):
    box = driver.find_element(By.ID, "period")
    # A month input takes its value typed as the browser's locale shows it;
    # set it directly instead.
    driver.execute_script("arguments[0].value = arguments[1]", box, period)
    driver.find_element(By.CSS_SELECTOR, "#statement-form button[type=submit]").click()
    wait.until(lambda d: d.find_element(By.ID, "statement-status").text not in ("", "Loading…"))
    wait.until(lambda d: "checking" not in d.find_element(By.ID, "statements").text)
    statements = []
    for section in driver.find_elements(By.CSS_SELECTOR, "#statements section"):
        rows = section.find_elements(By.CSS_SELECTOR, "tbody tr")
        total = section.find_elements(By.CSS_SELECTOR, "tfoot td.number")
        statements.append(
            {
                "heading": section.find_element(By.TAG_NAME, "h2").text,
                "cited": section.find_element(By.TAG_NAME, "p").text,
                "lines": [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in rows],
                "total": total[0].text if total else None,
            }
        )
    return statements


def chart():
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chart rect")) > 0)
    return {
        "bars": len(driver.find_elements(By.CSS_SELECTOR, "#chart rect")),
        "caption": driver.find_element(By.ID, "chart-caption").text,
    }


def download():
    before = set(os.listdir(downloads))
    driver.find_element(By.XPATH, "//button[text()='Download CSV']").click()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        new = [f for f in set(os.listdir(downloads)) - before if not f.endswith(".crdownload")]
        if new:
            with open(os.path.join(downloads, new[0]), encoding="utf-8") as f:
                return {"name": new[0], "text": f.read()}
        time.sleep(0.1)
    return None


def reconcile(path):
    driver.find_element(By.ID, "reconcile-file").send_keys(path)
    wait.until(lambda d: not d.find_element(By.ID, "reconcile-status").text.startswith("Comparing"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#reconciliation tbody tr")
    return {
        "status": driver.find_element(By.ID, "reconcile-status").text,
        "rows": [
            {"class": r.get_attribute("class"), "cells": [c.text for c in r.find_elements(By.TAG_NAME, "td")]}
            for r in rows
        ],
    }


seen = {}
try:
    driver.set_window_size(1280, 800)
    driver.get(url + "statements")
    use_key(driver, auditor)
    seen["statements"] = show(period)
    seen["chart"] = chart()
    seen["download"] = download()
    seen["narrow_overflow"] = screenshots(driver, shots, "statements")
    use_key(driver, label)
    seen["as_label"] = show(period)
    seen["label_chart"] = chart()
    seen["reconciliation"] = reconcile(label_csv)
    seen.update(page_checks(driver))
finally:
    driver.quit()

print(json.dumps(seen))
