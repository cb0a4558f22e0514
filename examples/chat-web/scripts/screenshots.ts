/**
 * `pnpm --filter @deadbolt/chat-web screenshots`: writes the main screens to
 * `docs/screenshots/chat-web-*.png` (the README shows them).
 *
 * The same set-up as the end-to-end test (test/harness/): the production build served on
 * 127.0.0.1, a relay in-process, real Chromium. Three users sign up in their own browser
 * contexts and talk, then alice's screens are captured: the conversation list with a 1:1
 * chat, a group chat, the safety-number screen, settings, and devices (after linking a
 * second device); plus the first-run screen.
 *
 * @module
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ChatUser } from '../test/harness/chat-user.js';
import { APP_DIR, startStack, type Stack } from '../test/harness/stack.js';

const OUT = join(APP_DIR, '..', '..', 'docs', 'screenshots');
const VIEWPORT = { width: 1280, height: 800 };

async function page(stack: Stack): Promise<Page> {
  const context = await stack.browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, permissions: ['camera', 'microphone'], colorScheme: 'light' });
  const p = await context.newPage();
  p.setDefaultTimeout(30_000);
  p.on('pageerror', (e) => process.stderr.write(`[chromium] ${e.message}\n`));
  return p;
}

/** Waits for fonts and the dialogs' entry animations, hides toasts, then writes the PNG. */
async function shoot(p: Page, name: string): Promise<void> {
  await p.mouse.move(1, VIEWPORT.height - 1); // no hover highlight
  await p.evaluate(async () => {
    document.getElementById('toast-root')?.replaceChildren();
    for (const el of document.querySelectorAll('.modal-body')) el.scrollTop = 0;
    window.scrollTo(0, 0);
    (document.activeElement as HTMLElement | null)?.blur();
    await document.fonts.ready;
    // Dialogs and toasts animate in once; spinners turn forever and are left alone.
    const finite = document.getAnimations().filter((a) => a.effect?.getComputedTiming().iterations !== Infinity);
    await Promise.all(finite.map((a) => a.finished.catch(() => undefined)));
  });
  const path = join(OUT, `chat-web-${name}.png`);
  await p.screenshot({ path, animations: 'disabled' });
  process.stdout.write(`wrote ${path}\n`);
}

async function main(): Promise<void> {
  await mkdir(OUT, { recursive: true });
  const stack = await startStack();
  try {
    const relayUrl = stack.relay.url;
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map(async (id) => new ChatUser(await page(stack), id)));
    const a = alice!;
    const b = bob!;
    const c = carol!;

    // The first-run screen, before anyone signs up.
    const fresh = await page(stack);
    await fresh.goto(stack.appUrl);
    await fresh.getByTestId('signup-user').fill('alice');
    await shoot(fresh, 'onboarding');
    await fresh.context().close();

    await Promise.all([
      a.signUp(stack.appUrl, { deviceId: 'alice-laptop', relayUrl }),
      b.signUp(stack.appUrl, { deviceId: 'bob-phone', relayUrl }),
      c.signUp(stack.appUrl, { deviceId: 'carol-desktop', relayUrl }),
    ]);

    // A 1:1 conversation.
    await a.startChat('bob');
    await a.send('Hey Bob! Did you get the tickets?');
    await b.openChat({ user: 'alice' });
    await b.receives('Hey Bob! Did you get the tickets?');
    await b.send('Yes, two for Saturday night.');
    await a.receives('Yes, two for Saturday night.');
    await b.send('Row F, seats 11 and 12.');
    await a.receives('Row F, seats 11 and 12.');
    await a.send('Perfect. I’ll bring snacks.');
    await b.receives('Perfect. I’ll bring snacks.');
    await b.send('Deal. See you at 7:30 at the entrance.');
    await a.receives('Deal. See you at 7:30 at the entrance.');

    // carol writes to alice, who has not opened it yet (an unread conversation).
    await c.startChat('alice');
    await c.send('Are we still on for the climbing gym on Thursday?');

    // A group.
    await a.createGroup('Weekend trip', ['bob', 'carol']);
    await a.send('The cabin is booked from Friday to Sunday!');
    await b.openChat({ group: 'Weekend trip' });
    await b.receives('The cabin is booked from Friday to Sunday!');
    await b.send('Amazing. I can drive, 4 seats.');
    await c.openChat({ group: 'Weekend trip' });
    await c.receives('Amazing. I can drive, 4 seats.');
    await c.send('I’ll bring the board games.');
    await a.receives('I’ll bring the board games.');
    await a.send('Let’s leave at 5 on Friday?');
    await b.receives('Let’s leave at 5 on Friday?');
    await b.send('Works for me.');
    await a.receives('Works for me.');
    await c.page.locator('[data-testid="chat-item"][data-chat="u:alice"]').waitFor();

    // alice verifies bob by comparing the numbers.
    await a.openChat({ user: 'bob' });
    await b.openChat({ user: 'alice' });
    const bobsNumber = await b.openSafetyNumber();
    await b.closeModal();
    await a.openSafetyNumber();
    await a.page.getByTestId('safety-compare-input').fill(bobsNumber.replace(/(\d{5})(?=\d)/g, '$1 '));
    await a.page.getByTestId('safety-compare-submit').click();
    await a.page.locator('[data-testid="safety-status"][data-verified="true"]').waitFor();
    await a.page.getByTestId('safety-compare-input').fill('');
    await shoot(a.page, 'safety-number');
    await a.closeModal();
    await a.page.locator('[data-testid="open-safety"][data-verified="true"]').waitFor();
    await a.chatItem({ user: 'carol' }).getByTestId('unread').waitFor();
    await shoot(a.page, 'chat');

    await a.openChat({ group: 'Weekend trip' });
    await a.receives('Works for me.');
    await shoot(a.page, 'group');

    // Settings, with WebRTC selected (not applied).
    await a.page.getByTestId('open-settings').click();
    await a.page.getByTestId('transport-webrtc').check();
    await shoot(a.page, 'settings');
    await a.closeModal();

    // Devices, after linking a second one.
    const phone = new ChatUser(await page(stack), 'alice');
    await phone.page.goto(stack.appUrl);
    await phone.page.getByTestId('tab-link').click();
    await phone.page.getByTestId('signup-user').fill('alice');
    await phone.page.getByTestId('signup-device').fill('alice-phone');
    await phone.page.locator('[data-testid="signup-advanced"] summary').click();
    await phone.page.getByTestId('signup-relay').fill(relayUrl);
    await phone.page.getByTestId('signup-submit').click();
    const code = await phone.page.getByTestId('link-code').inputValue();
    await shoot(phone.page, 'link');
    await a.page.getByTestId('open-devices').click();
    await a.page.getByTestId('approve-code').fill(code);
    await a.page.getByTestId('approve-submit').click();
    await a.page.locator('[data-testid="device-item"][data-device="alice-phone"]').waitFor();
    await phone.connected();
    await shoot(a.page, 'devices');
  } finally {
    await stack.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
