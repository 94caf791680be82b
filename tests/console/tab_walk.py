"""Walks the Dispute, Statements and Generations pages by Tab in headless
Chromium (WebDriver) before anything is entered, and prints, as JSON, the
controls each page's Tab stops reach in order with whether each showed a
focus outline, for tests/console.rs to check.

Usage: tab_walk.py URL
"""

import json
import sys

from browser import chromium, tab_order

url = sys.argv[1]
driver, wait = chromium()
seen = {}
try:
    driver.set_window_size(1280, 800)
    for page in ["", "statements", "generations"]:
        driver.get(url + page)
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
        seen[page or "dispute"] = tab_order(driver)
finally:
    driver.quit()

print(json.dumps(seen))
