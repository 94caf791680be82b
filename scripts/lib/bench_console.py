"""Times the console's Dispute page in headless Chromium: for each file,
`runs` uploads, from choosing the file to the answer on the page, and from
the upload's end to the answer on the page. The upload ends, on the
browser's clock, at the request's Resource Timing `requestStart` plus the
server's `upload` phase (its Server-Timing header: the body received and
staged); the answer is the page's User Timing mark. Prints each file's
medians and worst cases, and the ratio of its median to the first file's
(the baseline).

Usage: bench_console.py URL KEY RUNS BASELINE FILE...
"""

import os
import statistics
import sys
import time

from selenium.webdriver.common.by import By

from browser import chromium, use_key

# Seconds from the upload's end to the answer on the page.
AFTER_UPLOAD = """
const request = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/v1/lineage"));
const upload = request.serverTiming.find((t) => t.name === "upload");
const answered = performance.getEntriesByName("ledgerline:lineage-answered")[0];
return (answered.startTime - (request.requestStart + upload.duration)) / 1000;
"""

url, key, runs, *files = sys.argv[1:]
driver, wait = chromium()
try:
    driver.set_window_size(1280, 800)
    driver.get(url)
    use_key(driver, key)
    baseline = None
    print(
        f"{'file':<22} {'size':>9} {'median_s':>9} {'worst_s':>8} {'x_baseline':>10}"
        f" {'after_upload_median_s':>22} {'after_upload_worst_s':>21}  answer"
    )
    for path in files:
        times, after_upload = [], []
        for _ in range(int(runs)):
            driver.get(url)
            box = driver.find_element(By.ID, "audio-file")
            started = time.monotonic()
            box.send_keys(path)
            wait.until(lambda d: not d.find_element(By.ID, "upload-status").text.startswith("Tracing"))
            times.append(time.monotonic() - started)
            answer = driver.find_element(By.ID, "upload-status").text
            after_upload.append(driver.execute_script(AFTER_UPLOAD))
            # The page goes on (proofs, the spectrogram): let it finish, so
            # that the next run does not share the cores with it.
            wait.until(lambda d: d.find_element(By.ID, "spectrogram-section").is_displayed())
        median = statistics.median(times)
        baseline = baseline or median
        size = f"{os.path.getsize(path) / 1e6:.1f} MB"
        print(
            f"{os.path.basename(path):<22} {size:>9} {median:>9.3f} {max(times):>8.3f} {median / baseline:>10.2f}"
            f" {statistics.median(after_upload):>22.3f} {max(after_upload):>21.3f}  {answer[:60]}"
        )
finally:
    driver.quit()
