/**
 * chat-web end to end, in real Chromium, through the app's own UI: the production build
 * served on 127.0.0.1, a real relay in-process, and two users in two browser contexts
 * (separate IndexedDB), alice and bob.
 *
 * The tests run in order and share the two pages, as one story: sign-up and a 1:1 chat, a
 * group, reloading (history from IndexedDB), switching transport mid-conversation
 * (WebSocket, HTTP long-polling, WebRTC with a direct data channel on loopback), safety
 * numbers, devices (linking a second device of alice's), and a memory-only device that a
 * reload loses. Every wait is for something on screen (Playwright locators), never a sleep.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { newPage } from '@deadbolt/browser-harness';
import { createClient } from '@deadbolt/core';
import { createMemoryStorage } from '@deadbolt/storage-memory';
import { createHttpPollingTransport } from '@deadbolt/transport-http-polling';
import { ChatUser } from './harness/chat-user.js';
import { startStack, type Stack } from './harness/stack.js';

let stack: Stack;
let alice: ChatUser;
let bob: ChatUser;

/** A page in its own context (its own IndexedDB), with what loopback WebRTC needs. */
async function userPage(): Promise<Page> {
  const page = await newPage(stack.browser, { webrtc: true });
  page.setDefaultTimeout(30_000);
  return page;
}

beforeAll(async () => {
  stack = await startStack();
  alice = new ChatUser(await userPage(), 'alice');
  bob = new ChatUser(await userPage(), 'bob');
});

afterAll(async () => {
  await stack?.close();
});

describe('chat-web in Chromium', () => {
  test('alice and bob sign up; alice adds bob as a contact; they chat 1:1', async () => {
    await Promise.all([
      alice.signUp(stack.appUrl, { deviceId: 'alice-chrome', relayUrl: stack.relay.url }),
      bob.signUp(stack.appUrl, { deviceId: 'bob-chrome', relayUrl: stack.relay.url }),
    ]);
    await expect(alice.status.textContent()).resolves.toContain('WebSocket');

    await alice.startChat('bob');
    await alice.send('Hi Bob! This is end-to-end encrypted.');

    // Bob sees a new conversation with one unread message, then opens it.
    await bob.chatItem({ user: 'alice' }).getByTestId('unread').filter({ hasText: '1' }).waitFor();
    await bob.openChat({ user: 'alice' });
    await bob.receives('Hi Bob! This is end-to-end encrypted.', 'alice');
    await bob.send('Hi Alice, loud and clear.');
    await alice.receives('Hi Alice, loud and clear.', 'bob');
  });

  test('alice creates a group with bob; both send and both see every message', async () => {
    await alice.createGroup('Weekend trip', ['bob']);
    await alice.send('Who is in for Saturday?');

    await bob.chatItem({ group: 'Weekend trip' }).waitFor();
    await bob.openChat({ group: 'Weekend trip' });
    await bob.receives('Who is in for Saturday?', 'alice');
    await bob.send('Me! I will bring the map.');
    await alice.receives('Me! I will bring the map.', 'bob');
    await expect(bob.page.getByTestId('group-members').textContent()).resolves.toContain('2 members');

    // Group info: both members, alice the admin (she may add and remove).
    await alice.page.getByTestId('open-group-info').click();
    await alice.page.locator('[data-testid="member"][data-user="bob"]').waitFor();
    await expect(alice.page.locator('[data-testid="member"][data-user="alice"]').textContent()).resolves.toContain('admin');
    await alice.page.getByTestId('group-add-user').waitFor();
    await alice.closeModal();
  });

  test('after a reload both keep their history (IndexedDB) and the conversation goes on', async () => {
    await Promise.all([alice.reload(), bob.reload()]);

    await alice.openChat({ user: 'bob' });
    await alice.message('Hi Bob! This is end-to-end encrypted.', { direction: 'outgoing', status: 'sent' }).waitFor();
    await alice.receives('Hi Alice, loud and clear.', 'bob');
    await bob.openChat({ group: 'Weekend trip' });
    await bob.receives('Who is in for Saturday?', 'alice');
    await bob.message('Me! I will bring the map.', { direction: 'outgoing', status: 'sent' }).waitFor();

    await bob.openChat({ user: 'alice' });
    await alice.send('Still here after the reload.');
    await bob.receives('Still here after the reload.', 'alice');
    await bob.send('Me too.');
    await alice.receives('Me too.', 'bob');
  });

  test('switching transport mid-conversation: WebSocket → HTTP long-polling → WebRTC (direct on loopback)', async () => {
    // alice moves to HTTP long-polling while bob stays on WebSocket.
    await alice.switchTransport('http-polling');
    await alice.send('Now over HTTP long-polling.');
    await bob.receives('Now over HTTP long-polling.', 'alice');
    await bob.send('Got it, on WebSocket.');
    await alice.receives('Got it, on WebSocket.', 'bob');

    // bob follows.
    await bob.switchTransport('http-polling');
    await bob.send('Me too, polling now.');
    await alice.receives('Me too, polling now.', 'bob');

    // Both on WebRTC (falling back to WebSocket): a direct data channel opens on loopback.
    await Promise.all([alice.switchTransport('webrtc'), bob.switchTransport('webrtc')]);
    await alice.send('Over WebRTC now (this one may still take the relay).');
    await bob.receives('Over WebRTC now (this one may still take the relay).', 'alice');
    await Promise.all([
      alice.page.locator('[data-testid="path-badge"][data-path="direct"]').waitFor(),
      bob.page.locator('[data-testid="path-badge"][data-path="direct"]').waitFor(),
    ]);
    await alice.send('Direct, device to device.');
    await bob.receives('Direct, device to device.', 'alice');
    await bob.send('Direct back.');
    await alice.receives('Direct back.', 'bob');
    // The group still works on WebRTC (group messages always take the relay's fan-out).
    await alice.openChat({ group: 'Weekend trip' });
    await bob.openChat({ group: 'Weekend trip' });
    await alice.send('Group message over the WebRTC transport.');
    await bob.receives('Group message over the WebRTC transport.', 'alice');
  });

  test('the safety number is the same on both sides; comparing it marks the contact verified', async () => {
    await alice.openChat({ user: 'bob' });
    await bob.openChat({ user: 'alice' });
    const [aliceSees, bobSees] = await Promise.all([alice.openSafetyNumber(), bob.openSafetyNumber()]);
    expect(aliceSees).toMatch(/^\d{60}$/);
    expect(aliceSees).toBe(bobSees);
    await alice.page.getByTestId('safety-qr').locator('svg').waitFor();

    // A wrong number is refused.
    const wrong = `${bobSees.slice(0, 59)}${(Number(bobSees[59]) + 1) % 10}`;
    await alice.page.getByTestId('safety-compare-input').fill(wrong);
    await alice.page.getByTestId('safety-compare-submit').click();
    await alice.page.getByTestId('form-error').filter({ hasText: 'DIFFERENT' }).waitFor();
    await expect(alice.page.getByTestId('safety-status').getAttribute('data-verified')).resolves.toBe('false');

    // The number bob's screen shows, typed with spaces as it is displayed: verified.
    await alice.page.getByTestId('safety-compare-input').fill(bobSees.replace(/(\d{5})/g, '$1 '));
    await alice.page.getByTestId('safety-compare-submit').click();
    await alice.page.locator('[data-testid="safety-status"][data-verified="true"]').waitFor();
    await alice.closeModal();
    await alice.page.locator('[data-testid="open-safety"][data-verified="true"]').waitFor();

    // bob compared by eye: "Mark as verified".
    await bob.page.getByTestId('safety-mark-verified').click();
    await bob.page.locator('[data-testid="safety-status"][data-verified="true"]').waitFor();
    await bob.closeModal();
    await bob.page.locator('[data-testid="open-safety"][data-verified="true"]').waitFor();
  });

  test('device management lists this device; alice links a second device, which then receives messages', async () => {
    await alice.page.getByTestId('open-devices').click();
    const aliceChrome = alice.page.locator('[data-testid="device-item"][data-device="alice-chrome"]');
    await aliceChrome.getByTestId('this-device').waitFor();

    // A second browser (its own context) links to alice's account.
    const laptop = new ChatUser(await userPage(), 'alice');
    await laptop.page.goto(stack.appUrl);
    await laptop.page.getByTestId('tab-link').click();
    await laptop.page.getByTestId('signup-user').fill('alice');
    await laptop.page.getByTestId('signup-device').fill('alice-laptop');
    await laptop.page.locator('[data-testid="signup-advanced"] summary').click();
    await laptop.page.getByTestId('signup-relay').fill(stack.relay.url);
    await laptop.page.getByTestId('signup-submit').click();
    const code = await laptop.page.getByTestId('link-code').inputValue();
    expect(code).toMatch(/^deadbolt-link:/);

    await alice.page.getByTestId('approve-code').fill(code);
    await alice.page.getByTestId('approve-submit').click();
    await alice.page.getByTestId('approve-ok').filter({ hasText: 'alice-laptop' }).waitFor();
    await alice.page.locator('[data-testid="device-item"][data-device="alice-laptop"]').waitFor();
    await expect(alice.page.getByTestId('device-item').count()).resolves.toBe(2);

    await laptop.page.getByTestId('me').filter({ hasText: 'alice' }).waitFor();
    await laptop.connected();
    await alice.closeModal();

    // bob's next message reaches both of alice's devices.
    await bob.send('Hello to both of your devices.');
    await alice.receives('Hello to both of your devices.', 'bob');
    await laptop.chatItem({ user: 'bob' }).waitFor();
    await laptop.openChat({ user: 'bob' });
    await laptop.receives('Hello to both of your devices.', 'bob');
    await laptop.page.close();
  });

  test('a memory-only device works until the page reloads, and the app says it is gone', async () => {
    const carol = new ChatUser(await userPage(), 'carol');
    await carol.signUp(stack.appUrl, { deviceId: 'carol-tab', relayUrl: stack.relay.url, storage: 'memory' });
    await carol.startChat('alice');
    await carol.send('Hi, I keep nothing on disk.');
    await alice.chatItem({ user: 'carol' }).waitFor();

    await carol.page.reload();
    await carol.page.getByTestId('onboarding-notice').filter({ hasText: 'lost' }).waitFor();
    await carol.page.getByTestId('signup-user').waitFor();
    await carol.page.close();
  });

  test('a long conversation opens on its newest 100 messages; "Earlier messages" reads the page before them', async () => {
    // Dave, a Node client on the same relay, writes 105 messages to bob.
    const dave = await createClient({ userId: 'dave', deviceId: 'node', storage: createMemoryStorage(), transport: createHttpPollingTransport({ url: stack.relay.url }) });
    await dave.start();
    for (let i = 1; i <= 105; i++) await dave.send('bob', `note ${i}`);
    await dave.close();
    // Opened once all of them are in (the list shows the last one), so the chat starts from
    // the stored history rather than from messages arriving while it is open.
    await bob.chatItem({ user: 'dave' }).locator('.chat-item-preview', { hasText: /^note 105$/ }).waitFor();
    await bob.openChat({ user: 'dave' });
    await bob.receives('note 105', 'dave');
    const bubbles = bob.page.getByTestId('messages').getByTestId('message');
    await expect.poll(() => bubbles.count()).toBe(100);
    await expect(bob.message('note 5').count()).resolves.toBe(0);
    await bob.page.getByTestId('load-earlier').click();
    await bob.message('note 5', { direction: 'incoming' }).waitFor();
    await expect.poll(() => bubbles.count()).toBe(105);
    await expect(bubbles.first().locator('.text').textContent()).resolves.toBe('note 1');
    // The whole conversation is shown: no more pages to read.
    await expect(bob.page.getByTestId('load-earlier').count()).resolves.toBe(0);
  });
});
