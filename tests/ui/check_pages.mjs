// Open Prefect UI pages in headless Debian chromium and check what a person would see.
//   node check_pages.mjs SPEC.json RESULT.json
// SPEC: {"pages": [{"name": "...", "steps": [{"goto": URL} | {"click": {"role": R, "name": N}} | (clickText: exact text)
//         {"clickText": T} | {"fill": {"selector": CSS, "value": V}} | {"expect": TEXT} |
//         {"noSideScroll": TEXT} | {"screenshot": PATH}]}]}
// noSideScroll: the element showing TEXT, and every box around it, fits its width (nothing to
// scroll sideways to read it); a box that would need scrolling is reported as an error.
// RESULT: {"pages": [{"name", "seen": [TEXT...], "missing": [TEXT...], "errors": [...]}]}
// Each expected text must become visible within the timeout; a missing one is reported, and the
// page is screenshotted anyway so a failure can be looked at.
import { chromium } from "playwright-core";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [specPath, resultPath] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specPath, "utf8"));
const timeout = spec.timeoutMs ?? 60000;
const profileDir = mkdtempSync(join(tmpdir(), "sw-chromium-")); // a new, empty user-data-dir
const context = await chromium.launchPersistentContext(profileDir, {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1440, height: 1000 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const results = [];
try {
  for (const pageSpec of spec.pages) {
    const page = await context.newPage();
    const result = { name: pageSpec.name, seen: [], missing: [], errors: [] };
    for (const step of pageSpec.steps) {
      try {
        if (step.goto) {
          await page.goto(step.goto, { waitUntil: "load", timeout }); // the UI polls the API: never "networkidle"
        } else if (step.click) {
          await page.getByRole(step.click.role, { name: step.click.name }).first().click({ timeout });
        } else if (step.clickText) {
          await page.getByText(step.clickText, { exact: true }).first().click({ timeout });
        } else if (step.fill) {
          await page.locator(step.fill.selector).first().fill(step.fill.value, { timeout });
        } else if (step.noSideScroll) {
          const target = page.getByText(step.noSideScroll, { exact: false }).first();
          await target.waitFor({ state: "visible", timeout });
          const wide = await target.evaluate((element) => {
            const found = [];
            for (let box = element; box; box = box.parentElement) {
              const style = getComputedStyle(box);
              const scrolls = ["auto", "scroll"].includes(style.overflowX) || box === document.scrollingElement;
              if (scrolls && box.scrollWidth > box.clientWidth + 1) {
                const right = box.getBoundingClientRect().right;
                const widest = Array.from(box.querySelectorAll("*"))
                  .filter((child) => child.getBoundingClientRect().right > right + 1)
                  .map((child) => `${child.tagName.toLowerCase()} "${(child.textContent || "").slice(0, 60)}"`)
                  .slice(-3);
                found.push(`${box.tagName.toLowerCase()}.${box.className}: ${box.scrollWidth} > ${box.clientWidth} (${widest.join(", ")})`);
              }
            }
            return found;
          });
          if (wide.length) result.errors.push(`"${step.noSideScroll}" must be scrolled sideways to read: ${wide.join("; ")}`);
        } else if (step.expect) {
          try {
            await page.getByText(step.expect, { exact: false }).first().waitFor({ state: "visible", timeout });
            result.seen.push(step.expect);
          } catch {
            result.missing.push(step.expect);
          }
        } else if (step.screenshot) {
          await page.screenshot({ path: step.screenshot, fullPage: false });
        }
      } catch (err) {
        result.errors.push(`${JSON.stringify(step)}: ${err.message.split("\n")[0]}`);
      }
    }
    results.push(result);
    await page.close();
  }
} finally {
  await context.close();
  rmSync(profileDir, { recursive: true, force: true });
}
writeFileSync(resultPath, JSON.stringify({ pages: results }, null, 2));
