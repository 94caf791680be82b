"""Drives the console's Audit page in headless Chromium (WebDriver) and
prints what it saw as JSON, for tests/console.rs to check.

Usage: audit.py URL AUDITOR_KEY FORBIDDEN_KEY TAMPER_SEQ SCREENSHOT_DIR

FORBIDDEN_KEY is a valid key whose role may not read events (403).
"""

import json
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from browser import chromium, page_checks, screenshots, tab_order, use_key

url, auditor, forbidden, tamper_seq, shots = sys.argv[1:6]
driver, wait = chromium()
seen = {}


def text_of(element_id):
    return driver.find_element(By.ID, element_id).text


def submit(form_id, fields):
    for field, value in fields.items():
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    driver.find_element(By.CSS_SELECTOR, f"#{form_id} button[type=submit]").click()


def result_after(form_id, fields, result_id):
    submit(form_id, fields)
    wait.until(lambda d: d.find_element(By.ID, result_id).text not in ("", "Verifying…"))
    return text_of(result_id)


try:
    driver.set_window_size(1280, 800)
    driver.get(url + "audit")
    wait.until(EC.text_to_be_present_in_element((By.ID, "latest"), "verified"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#checkpoints tbody tr")
    seen["size"] = text_of("size")
    seen["origin"] = text_of("origin")
    seen["verifier_key"] = text_of("verifier-key")
    seen["policy"] = text_of("witness-policy")
    seen["history"] = [[c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in rows]
    # Every control has an accessible name.
    seen["key_field_name"] = driver.find_element(By.ID, "api-key").accessible_name

    seen["without_key"] = result_after("event-form", {"event-seq": "1"}, "event-result")
    use_key(driver, forbidden)
    seen["forbidden_key"] = result_after("event-form", {"event-seq": "1"}, "event-result")
    use_key(driver, "llk_" + "0" * 64)
    seen["unknown_key"] = result_after("event-form", {"event-seq": "1"}, "event-result")
    use_key(driver, auditor)
    wait.until(EC.text_to_be_present_in_element((By.ID, "latest"), "verified"))
    seen["key_storage"] = driver.execute_script(
        "return [sessionStorage.getItem('ledgerline.apiKey'), localStorage.length]"
    )
    seen["event"] = result_after("event-form", {"event-seq": "1"}, "event-result")
    seen["missing_event"] = result_after("event-form", {"event-seq": "999999"}, "event-result")
    seen["consistency"] = result_after(
        "consistency-form", {"older-size": "1", "newer-size": seen["size"]}, "consistency-result"
    )
    seen["narrow_overflow"] = screenshots(driver, shots, "audit")
    seen["tab_order"] = tab_order(driver)

    # The verifier itself, on honest and on tampered input: one changed
    # proof hash, one changed leaf byte, one changed consistency hash.
    seen["tampered"] = driver.execute_async_script(
        """
        const [seq, done] = arguments;
        (async () => {
          const v = await import('/console/verify.js');
          const key = await v.parseVerifierKey((await (await fetch('/v1/key')).json()).key);
          const note = await (await fetch('/v1/checkpoint')).text();
          const checkpoint = await v.verifyCheckpoint(note, key);
          const auth = {headers: {Authorization: 'Bearer ' + sessionStorage.getItem('ledgerline.apiKey')}};
          const event = (await (await fetch(`/v1/events?from=${seq}&limit=1`, auth)).json()).events[0];
          const inclusion = await (await fetch(`/v1/proofs/inclusion?seq=${seq}&size=${checkpoint.size}`)).json();
          const consistency = await (await fetch(`/v1/proofs/consistency?from=1&to=${checkpoint.size}`)).json();
          const first = await v.verifyCheckpoint(await (await fetch('/v1/checkpoint?size=1')).text(), key);
          const leaf = v.base64ToBytes(event.leaf);
          const proof = () => inclusion.proof.map(v.hexToBytes);
          const outcome = async (check) => {
            try { await check(); return 'accepted'; }
            catch (e) { return (e instanceof v.VerificationError ? 'rejected: ' : 'error: ') + e.message; }
          };
          const flip = (bytes, at) => { const copy = bytes.slice(); copy[at] ^= 1; return copy; };
          const results = {
            honest: await outcome(() => v.verifyInclusion(leaf, BigInt(seq), checkpoint, proof())),
            proof_hash: await outcome(() => {
              const p = proof(); p[0] = flip(p[0], 5);
              return v.verifyInclusion(leaf, BigInt(seq), checkpoint, p);
            }),
            leaf_byte: await outcome(() => v.verifyInclusion(flip(leaf, 10), BigInt(seq), checkpoint, proof())),
            consistent: await outcome(() => v.verifyConsistency(first.size, checkpoint.size, first.root, checkpoint.root, consistency.proof.map(v.hexToBytes))),
            consistency_hash: await outcome(() => {
              const p = consistency.proof.map(v.hexToBytes); p[p.length - 1] = flip(p[p.length - 1], 0);
              return v.verifyConsistency(first.size, checkpoint.size, first.root, checkpoint.root, p);
            }),
            signature: await outcome(() => v.verifyCheckpoint(note.replace(/\\n(\\d+)\\n/, (m, n) => `\\n${Number(n) + 1}\\n`), key)),
          };
          done(results);
        })().catch((e) => done({error: String(e)}));
        """,
        tamper_seq,
    )

    seen.update(page_checks(driver))
finally:
    driver.quit()

print(json.dumps(seen))
