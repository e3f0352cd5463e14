// The report as a person sees it: Debian's Chromium, driven by playwright-core, loads the page from
// disk with a fresh profile; the page must raise no error, fetch nothing, show every picture and look
// like something (many colours). Skipped where /usr/bin/chromium is not installed.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureReport } from './fixture-report.js';
import { decodePng, distinctColors } from './png-decode.js';

const CHROMIUM = '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
const work = mkdtempSync(join(tmpdir(), 'attnpass-browser-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const title = `renders with no console or page error, every picture decoded, one section per layer${present ? '' : ` (skipped: ${CHROMIUM} is not installed; apt-get install chromium. The structural checks in report.test.ts still run)`}`;

describe('the report in headless Chromium', () => {
  it.skipIf(!present)(title, async () => {
    const { report } = await fixtureReport(work, 'llama-gqa-dynamo', 'ast', { 'block-size': 16, density: 0.5 }, true);
    const profile = mkdtempSync(join(work, 'profile-'));
    let context: BrowserContext | undefined;
    try {
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
        viewport: { width: 1280, height: 900 },
      });
      const page = context.pages()[0] ?? (await context.newPage());
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('request', (r) => {
        if (!/^(file|data):/.test(r.url())) problems.push(`fetched ${r.url()}`);
      });
      await page.goto(pathToFileURL(report.html).href, { waitUntil: 'load' });

      expect(await page.locator('section.layer').count()).toBe(report.data.layers.length);
      const images = await page.evaluate(() =>
        Promise.all(
          [...document.querySelectorAll('svg image')].map(async (el) => {
            const img = new Image();
            img.src = el.getAttribute('href') ?? '';
            await img.decode();
            return { natural: [img.naturalWidth, img.naturalHeight], declared: [Number(el.getAttribute('width')), Number(el.getAttribute('height'))] };
          }),
        ),
      );
      expect(images.length).toBe(report.pictures.length);
      for (const i of images) expect(i.natural).toEqual(i.declared);

      const shot = await page.screenshot({ fullPage: true });
      writeFileSync(join(work, 'screenshot.png'), shot);
      const png = decodePng(shot);
      expect(png.height).toBeGreaterThan(900);
      expect(distinctColors(png)).toBeGreaterThan(50);
      expect(problems).toEqual([]);
    } finally {
      await context?.close();
    }
  });
});
