// The accessibility audit the e2e tests run on a state of the window: axe-core's WCAG 2.1 A and AA
// rules, in the page as it is shown, in the light and the dark theme. Any violation fails with one
// line per element (rule, impact, selector, what is wrong), so a new state costs one call.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AxeResults, Result, RunOptions } from 'axe-core';
import type { Page } from 'playwright-core';

/** WCAG 2.0 and 2.1, levels A and AA: what the window promises. */
export const WCAG21_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

let axeSource: Promise<string> | undefined;

async function inject(page: Page): Promise<void> {
  if (await page.evaluate(() => typeof (globalThis as { axe?: unknown }).axe === 'object')) return;
  axeSource ??= readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  // Evaluated through the debugging protocol, which the page's Content-Security-Policy does not
  // govern; a <script> tag would be refused by it, as it should be.
  await page.evaluate(await axeSource);
}

async function runAxe(page: Page): Promise<Result[]> {
  await inject(page);
  const options: RunOptions = { runOnly: { type: 'tag', values: WCAG21_AA }, resultTypes: ['violations'] };
  const results = await page.evaluate(
    (o) => (globalThis as unknown as { axe: { run(context: string, options: RunOptions): Promise<AxeResults> } }).axe.run('html', o),
    options,
  );
  return results.violations;
}

const where = (id: string, target: readonly unknown[]): string => `${id} ${target.map(String).join(' >>> ')}`;

/**
 * Runs the WCAG 2.1 A/AA rules on the page as it is and returns the violations that are still
 * there when the rules run again. The page is live (other jobs on the host start, end and raise
 * notices while an audit takes seconds), and an element that comes or goes mid-run is measured
 * half-drawn; what a person sees on a settled page is there both times.
 */
export async function axeViolations(page: Page): Promise<Result[]> {
  const first = await runAxe(page);
  if (first.length === 0) return first;
  const seen = new Set(first.flatMap((v) => v.nodes.map((n) => where(v.id, n.target))));
  return (await runAxe(page))
    .map((v) => ({ ...v, nodes: v.nodes.filter((n) => seen.has(where(v.id, n.target))) }))
    .filter((v) => v.nodes.length > 0);
}

/** One line per element: rule id, impact, target selector, then axe's summary of what to fix. */
export function describeViolations(violations: readonly Result[]): string {
  return violations
    .flatMap((v) =>
      v.nodes.map((n) => {
        const summary = (n.failureSummary ?? v.help).replace(/\s*\n\s*/g, ' ');
        return `- ${v.id} (${n.impact ?? v.impact ?? 'impact unknown'}) at ${n.target.map(String).join(' >>> ')}: ${summary} [${v.helpUrl}]`;
      }),
    )
    .join('\n');
}

/** Fails when the page, as shown now, violates a WCAG 2.1 A/AA rule; `state` names what is shown. */
export async function assertAccessible(page: Page, state: string): Promise<void> {
  const violations = await axeViolations(page);
  if (violations.length > 0) assert.fail(`axe-core found WCAG 2.1 A/AA violations in ${state}:\n${describeViolations(violations)}`);
}

/**
 * Audits the state in the light theme, then in the dark one, and leaves the page light. The theme
 * follows the system's (emulated here) unless the user picked one, which these tests never do.
 */
export async function assertAccessibleInBothThemes(page: Page, state: string): Promise<void> {
  const problems: string[] = [];
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.waitForFunction((s) => (globalThis as unknown as PageGlobals).document.documentElement.dataset['theme'] === s, scheme);
    await drawnFrame(page);
    const violations = await axeViolations(page);
    if (violations.length > 0) problems.push(`${state}, ${scheme}:\n${describeViolations(violations)}${await themeOfFlagged(page, violations)}`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  if (problems.length > 0) assert.fail(`axe-core found WCAG 2.1 A/AA violations in ${problems.join('\nand in ')}`);
}

// The page's globals, typed as far as these audits use them (the tests are compiled without the DOM's types).
interface Styles {
  color: string;
  getPropertyValue(name: string): string;
}
interface PageGlobals {
  requestAnimationFrame(callback: () => void): number;
  getComputedStyle(element: object): Styles;
  document: { documentElement: { dataset: Record<string, string | undefined> }; querySelector(selector: string): object | null };
}

/** Resolves once the page has drawn a frame as it is now: the theme just set is what a person sees. */
async function drawnFrame(page: Page): Promise<void> {
  await page.evaluate(() => {
    const g = globalThis as unknown as PageGlobals;
    return new Promise<void>((resolve) => g.requestAnimationFrame(() => g.requestAnimationFrame(() => resolve())));
  });
}

/**
 * For contrast violations: each flagged element's theme colours beside the page's. A run beside a
 * CPU hog once flagged one layer row of the dark theme drawn in the light theme's exact colours
 * while the page around it was dark; should that come again, this says whether the element's own
 * styles lagged behind the page's (the browser) or the theme itself falls short (the product).
 */
async function themeOfFlagged(page: Page, violations: readonly Result[]): Promise<string> {
  const selectors = violations.filter((v) => v.id === 'color-contrast').flatMap((v) => v.nodes.map((n) => n.target.map(String).join(' ')));
  if (selectors.length === 0) return '';
  // No named functions inside: the page runs this as written, without the helpers tsx adds for names.
  const lines = await page.evaluate(
    ({ list, tokens }) => {
      const g = globalThis as unknown as PageGlobals;
      const root = g.document.documentElement;
      return [root, ...list.map((selector) => g.document.querySelector(selector))].map((element, i) => {
        const where = i === 0 ? `the page (data-theme=${root.dataset['theme'] ?? 'none'})` : list[i - 1];
        if (!element) return `${where}: gone`;
        const style = g.getComputedStyle(element);
        return `${where}: ${tokens.map((t) => `${t} ${style.getPropertyValue(t).trim()}`).join(', ')}, color ${style.color}`;
      });
    },
    { list: selectors, tokens: ['--text', '--muted', '--surface-2'] },
  );
  return `\n  theme colours: ${lines.join('\n  ')}`;
}
