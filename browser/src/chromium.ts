/**
 * Launching Debian's real Chromium (`/usr/bin/chromium`) through playwright-core.
 *
 * playwright-core never downloads a browser here (`playwright install` is blocked on this
 * network and must not be run): every launch points `executablePath` at the system build.
 *
 * @module
 */
import { accessSync, constants } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Where Debian's `chromium` package installs the browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * The flags TOOLCHAIN.md lists for this machine and the CI machine.
 *
 * - `--no-sandbox`: we run as root in a container, where Chromium's sandbox cannot start.
 * - `--disable-gpu`, `--disable-quic`: no GPU, and no UDP to the outside.
 * - `--no-first-run`, `--disable-background-networking`, `--disable-component-update`,
 *   `--disable-sync`: no network traffic of Chromium's own, so tests only see ours.
 * - `--allow-loopback-in-peer-connection`: lets WebRTC gather 127.0.0.1 candidates; with
 *   the context permissions in {@link newPage} it is what makes loopback WebRTC work.
 *
 * `--headless` is passed by playwright itself (`headless: true`), and the fresh
 * `--user-data-dir` too: `chromium.launch()` creates a new temporary profile directory for
 * every launch and deletes it on `close()` (playwright refuses a `--user-data-dir` flag in
 * `args` for exactly that reason), so no state leaks between launches.
 */
export const CHROMIUM_FLAGS: readonly string[] = Object.freeze([
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection',
]);

/**
 * Returns the Chromium executable's path, or throws a loud error saying how to install it.
 *
 * Chromium tests call this (directly or through {@link launchChromium}) instead of skipping:
 * a missing browser must fail the run, never pass it silently.
 *
 * @example
 * ```ts
 * requireChromium(); // throws with install instructions when /usr/bin/chromium is absent
 * ```
 */
export function requireChromium(executablePath: string = CHROMIUM_PATH): string {
  try {
    accessSync(executablePath, constants.X_OK);
  } catch (cause) {
    throw new Error(
      [
        '',
        '='.repeat(78),
        `REAL CHROMIUM NOT FOUND at ${executablePath}.`,
        'These tests run against a real browser (real IndexedDB, Web Locks, WebRTC) and do',
        'not skip when it is missing. Install Debian\'s Chromium (about 15 s, 440 MB):',
        '',
        '    apt-get update && apt-get install -y chromium',
        '',
        'Do NOT run `playwright install`: its downloads are blocked here and it is not used.',
        'See /work/shared/TOOLCHAIN.md, section "Real Chromium".',
        '='.repeat(78),
      ].join('\n'),
      { cause },
    );
  }
  return executablePath;
}

/** Options for {@link launchChromium}. */
export interface LaunchChromiumOptions {
  /** The browser binary. Default {@link CHROMIUM_PATH}. */
  readonly executablePath?: string;
  /** Extra command-line flags, appended to {@link CHROMIUM_FLAGS}. */
  readonly args?: readonly string[];
  /** Default `true`; `false` only helps when debugging with a display. */
  readonly headless?: boolean;
}

/**
 * Launches the system Chromium with the flags from TOOLCHAIN.md and a fresh, temporary
 * profile. Reuse one browser per test file (launching costs about a second) and close it
 * in `afterAll`.
 *
 * @example
 * ```ts
 * const browser = await launchChromium();
 * const page = await newPage(browser, { webrtc: true });
 * await page.goto(server.url);
 * await browser.close();
 * ```
 */
export async function launchChromium(options: LaunchChromiumOptions = {}): Promise<Browser> {
  const executablePath = requireChromium(options.executablePath);
  return chromium.launch({
    executablePath,
    headless: options.headless ?? true,
    args: [...CHROMIUM_FLAGS, ...(options.args ?? [])],
  });
}

/** Options for {@link newPage}. */
export interface NewPageOptions {
  /**
   * Grants `camera` and `microphone` to the page's context. Needed (together with
   * `--allow-loopback-in-peer-connection`, always passed) for WebRTC to gather loopback
   * ICE candidates; without it no candidates appear.
   */
  readonly webrtc?: boolean;
  /**
   * Where the page's uncaught errors and `console.error` lines go; default: stderr,
   * prefixed with `[chromium]`, so a failing page explains itself in the test output.
   * Pass `null` to drop them.
   */
  readonly onPageError?: ((line: string) => void) | null;
}

/**
 * Opens a page in a new browser context. A context is like a fresh incognito profile: its
 * pages share one origin's IndexedDB, Web Locks and cookies, while other contexts see none
 * of it. So open a second page that must share a database with the first through
 * `page.context().newPage()`. Closing the page returned here closes its context (and any
 * such extra page).
 *
 * @example
 * ```ts
 * const page = await newPage(browser);
 * const second = await page.context().newPage(); // same origin storage as `page`
 * ```
 */
export async function newPage(browser: Browser, options: NewPageOptions = {}): Promise<Page> {
  const context: BrowserContext = await browser.newContext(
    options.webrtc === true ? { permissions: ['camera', 'microphone'] } : {},
  );
  const report =
    options.onPageError === undefined
      ? (line: string) => process.stderr.write(`[chromium] ${line}\n`)
      : options.onPageError;
  if (report !== null) {
    context.on('weberror', (e) => report(`uncaught: ${e.error().stack ?? e.error().message}`));
    context.on('console', (m) => {
      if (m.type() === 'error') report(`console.error: ${m.text()}`);
    });
  }
  const page = await context.newPage();
  // One page per context by default: closing it releases the context too. Extra pages
  // opened with `page.context().newPage()` are closed with it.
  page.once('close', () => {
    void context.close().catch(() => undefined);
  });
  return page;
}
