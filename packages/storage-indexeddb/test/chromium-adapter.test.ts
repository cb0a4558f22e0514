// Backend-specific behaviour in real Chromium: real Web Locks across two pages, a real
// QuotaExceededError, and other pages deleting, upgrading or holding the database.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newPage } from '@deadbolt/browser-harness';
import { call, loadBundle, openPage, startChromium, type ChromiumFixture } from './browser/chromium.js';

let chromium: ChromiumFixture;
let n = 0;
const dbName = (what: string) => `${what}-${n++}-${Date.now()}`;

beforeAll(async () => {
  chromium = await startChromium();
});
afterAll(async () => {
  await chromium?.close();
});

function ok<T>(result: { ok: true; value: T } | { ok: false; error: { name: string; message: string; stack: string } }): T {
  if (!result.ok) throw new Error(`in Chromium: ${result.error.name}: ${result.error.message}\n${result.error.stack}`);
  return result.value;
}

describe('the exclusive lock is a real Web Lock', () => {
  it('exclusive holds an exclusive Web Lock named after the database, and releases it', async () => {
    const page = await openPage(chromium);
    const name = dbName('weblocks');
    const held = ok(await call(page, 'heldInsideExclusive', name));
    expect(held.inside).toContainEqual({ name: `deadbolt-storage-indexeddb:${name}`, mode: 'exclusive' });
    expect(held.after).not.toContain(`deadbolt-storage-indexeddb:${name}`);
    await page.close();
  });

  /**
   * Two pages of one origin (one context) increment one counter, each step a
   * read-modify-write. Each step reports entering and leaving to Node *while it holds the
   * lock*, so Node seeing two steps inside at once means they really overlapped; and a
   * call back to Node between the read and the write leaves room for the other page.
   */
  async function contend(locked: boolean, perPage: number) {
    const first = await newPage(chromium.browser);
    const context = first.context();
    let inside = 0;
    let maxInside = 0;
    const entries: string[] = [];
    const barrier = () => {
      // Resolves when both pages have arrived.
      let waiting: Array<() => void> = [];
      return () =>
        new Promise<void>((resolve) => {
          waiting.push(resolve);
          if (waiting.length === 2) {
            for (const go of waiting) go();
            waiting = [];
          }
        });
    };
    const start = barrier();
    const between = barrier();
    await context.exposeFunction('deadboltStart', () => start());
    await context.exposeFunction('deadboltEnter', (pageId: string) => {
      inside++;
      maxInside = Math.max(maxInside, inside);
      entries.push(pageId);
    });
    await context.exposeFunction('deadboltLeave', () => {
      inside--;
    });
    // With the lock, nothing to wait for. Without it (the control), both pages wait for
    // each other after their read: both read the same value, and one update is lost.
    await context.exposeFunction('deadboltBetween', () => (locked ? undefined : between()));
    await loadBundle(chromium, first);
    const second = await openPage(chromium, context);
    const name = dbName(locked ? 'two-pages' : 'two-pages-control');
    const results = await Promise.all([
      call(first, 'increments', name, 'A', perPage, locked),
      call(second, 'increments', name, 'B', perPage, locked),
    ]);
    results.forEach(ok);
    ok(await call(first, 'open', 'reader', name));
    const final = ok(await call(first, 'call', 'reader', 'get', ['counter'])) as number[];
    await first.close();
    const switches = entries.filter((p, i) => i > 0 && p !== entries[i - 1]).length;
    return { maxInside, entries: entries.length, switches, final: final[0] };
  }

  it('two pages run exclusive read-modify-write increments concurrently: never overlapping, nothing lost', async () => {
    const perPage = 20;
    const result = await contend(true, perPage);
    expect(result.entries).toBe(2 * perPage);
    expect(result.maxInside, 'steps inside the lock at once').toBe(1);
    expect(result.final, 'counter after every increment').toBe(2 * perPage);
    // The pages really took turns (Web Locks grant in request order), rather than one
    // finishing before the other started.
    expect(result.switches).toBeGreaterThanOrEqual(2);
  });

  it('control: without exclusive, the same two pages overlap and lose updates (so the checks above can fail)', async () => {
    const perPage = 5;
    const result = await contend(false, perPage);
    expect(result.maxInside).toBe(2);
    expect(result.final).toBe(perPage); // every round, both wrote the same value
  });
});

describe('real IndexedDB failures', () => {
  it('a full quota (QuotaExceededError, quota lowered through DevTools): typed StorageError, nothing of the batch applied', async () => {
    const page = await openPage(chromium);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(chromium.server.url).origin, quotaSize: 1024 * 1024 });
    const name = dbName('quota');
    ok(await call(page, 'open', 'q', name));
    const full = await call(page, 'bigBatch', 'q', 'p', 4 * 1024 * 1024);
    expect(full.ok).toBe(false);
    if (full.ok) return;
    expect(full.error).toMatchObject({ name: 'StorageError', code: 'STORAGE_FAILED', kind: 'storage', quota: true, causeName: 'QuotaExceededError' });
    expect(full.error.message).toMatch(/quota exceeded/);
    expect(ok(await call(page, 'count', 'q', 'p')), 'entries of the failed batch').toBe(0);
    // The adapter is still usable for what fits.
    ok(await call(page, 'bigBatch', 'q', 'p', 1024));
    expect(ok(await call(page, 'count', 'q', 'p'))).toBe(3);
    await page.close();
  });

  it('another page deletes the database: the open adapter closes so the delete is not blocked, then rejects with STORAGE_FAILED', async () => {
    const page = await openPage(chromium);
    const other = await openPage(chromium, page.context());
    const name = dbName('deleted');
    ok(await call(page, 'open', 'a', name));
    ok(await call(page, 'call', 'a', 'put', ['k'], [1]));
    ok(await call(other, 'deleteDatabase', name));
    const after = await call(page, 'call', 'a', 'get', ['k']);
    expect(after.ok).toBe(false);
    if (!after.ok) {
      expect(after.error).toMatchObject({ code: 'STORAGE_FAILED', kind: 'storage' });
      expect(after.error.message).toMatch(/no longer open: another connection deleted or upgraded it/);
    }
    const closed = await call(page, 'call', 'a', 'close', ['k']);
    expect(closed.ok).toBe(true);
    const afterClose = await call(page, 'call', 'a', 'get', ['k']);
    expect(!afterClose.ok && afterClose.error.code).toBe('CLOSED');
    await page.close();
  });

  it('another page upgrades the schema (the next release): not blocked, and the open adapter reports the loss', async () => {
    const page = await openPage(chromium);
    const other = await openPage(chromium, page.context());
    const name = dbName('upgraded');
    ok(await call(page, 'open', 'a', name));
    ok(await call(page, 'call', 'a', 'put', ['k'], [1]));
    // blockedTimeoutMs 0: any `blocked` event fails the upgrade at once.
    expect(ok(await call(other, 'upgradeToV2', name, 0))).toBe(2);
    const after = await call(page, 'call', 'a', 'get', ['k']);
    expect(!after.ok && after.error.code).toBe('STORAGE_FAILED');
    await page.close();
  });

  it('a page that keeps an old version open blocks the upgrade: STORAGE_BUSY', async () => {
    const page = await openPage(chromium);
    const old = await openPage(chromium, page.context());
    const name = dbName('blocked');
    ok(await call(old, 'holdRaw', name, 1));
    const blocked = await call(page, 'upgradeToV2', name, 0);
    expect(!blocked.ok && blocked.error).toMatchObject({ code: 'STORAGE_BUSY', kind: 'storage' });
    await call(old, 'releaseRaw');
    await page.close();
  });
});
