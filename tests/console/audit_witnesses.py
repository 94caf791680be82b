"""Drives the console's Audit page of a log with a witness policy in
headless Chromium (WebDriver) and prints what it saw as JSON, for
tests/console.rs to check: the policy's witnesses, each checkpoint's
cosignatures as verified in the browser, and the verifier on honest and on
tampered cosignatures.

Usage: audit_witnesses.py URL SCREENSHOT_DIR
"""

import json
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from browser import chromium, page_checks, screenshots

url, shots = sys.argv[1:3]
driver, wait = chromium()
seen = {}

try:
    driver.set_window_size(1280, 800)
    driver.get(url + "audit")
    wait.until(EC.text_to_be_present_in_element((By.ID, "latest"), "verified"))
    seen["policy"] = driver.find_element(By.ID, "witness-policy").text
    seen["witnesses"] = [
        [c.text for c in r.find_elements(By.TAG_NAME, "td")]
        for r in driver.find_elements(By.CSS_SELECTOR, "#witness-table tbody tr")
    ]
    seen["latest_witnessed"] = driver.find_element(By.ID, "latest-witnessed").text
    seen["history"] = [
        [c.text for c in r.find_elements(By.TAG_NAME, "td")]
        for r in driver.find_elements(By.CSS_SELECTOR, "#checkpoints tbody tr")
    ]
    seen["narrow_overflow"] = screenshots(driver, shots, "audit-witnessed")

    # The cosignature check itself: the witnessed checkpoint as served, and
    # with one byte changed in a cosignature, in its timestamp, or in the
    # checkpoint body; keys that are not cosignature/v1 keys.
    seen["tampered"] = driver.execute_async_script(
        """
        const done = arguments[0];
        (async () => {
          const v = await import('/console/verify.js');
          const log = await v.parseVerifierKey((await (await fetch('/v1/key')).json()).key);
          const policy = await (await fetch('/v1/witnesses')).json();
          const witnesses = await Promise.all(policy.witnesses.map(async (w) =>
            ({name: w.name, key: await v.parseCosignerKey(w.verifier_key)})));
          const note = await (await fetch('/v1/checkpoint?witnessed=true')).text();
          const verdicts = async (text) => {
            try {
              const checked = await v.checkCosignatures(await v.verifyCheckpoint(text, log), witnesses);
              return checked.map((c) => c.verified ? `${c.name}: verified` : `${c.name}: ${c.reason}`);
            } catch (e) { return [(e instanceof v.VerificationError ? 'rejected: ' : 'error: ') + e.message]; }
          };
          // Changes byte `at` of the first cosignature line's signature data.
          const flipCosignature = (at) => {
            const lines = note.split('\\n');
            const i = lines.findIndex((l) => l.startsWith('\\u2014 ') && !l.startsWith(`\\u2014 ${log.name} `));
            const [dash, name, data] = lines[i].split(' ');
            const bytes = v.base64ToBytes(data);
            bytes[at] ^= 1;
            lines[i] = `${dash} ${name} ${btoa(String.fromCharCode(...bytes))}`;
            return lines.join('\\n');
          };
          const keyOutcome = async (text) => {
            try { await v.parseCosignerKey(text); return 'accepted'; }
            catch (e) { return (e instanceof v.VerificationError ? 'rejected: ' : 'error: ') + e.message; }
          };
          const [kname, kid, kdata] = policy.witnesses[0].verifier_key.split('+');
          const otherId = (parseInt(kid, 16) ^ 1).toString(16).padStart(8, '0');
          done({
            honest: await verdicts(note),
            signature_byte: await verdicts(flipCosignature(40)),
            timestamp_byte: await verdicts(flipCosignature(11)),
            body_edited: await verdicts(note.replace(/^([^\\n]*\\n)(\\d+)/, (m, o, n) => `${o}${Number(n) + 1}`)),
            wrong_key_id: await keyOutcome(`${kname}+${otherId}+${kdata}`),
            log_key_as_witness_key: await keyOutcome((await (await fetch('/v1/key')).json()).key),
          });
        })().catch((e) => done({error: String(e)}));
        """
    )
    seen.update(page_checks(driver))
finally:
    driver.quit()

print(json.dumps(seen))
