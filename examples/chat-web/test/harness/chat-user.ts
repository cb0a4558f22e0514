/**
 * Drives one user's chat-web page the way a person would: typing in fields, clicking
 * buttons, and waiting for what appears on screen (Playwright's locators wait for the DOM;
 * nothing here sleeps).
 *
 * @module
 */
import type { Locator, Page } from 'playwright-core';

export type Transport = 'websocket' | 'http-polling' | 'webrtc';

/** CSS attribute selector value, quoted. */
const q = (value: string): string => JSON.stringify(value);

export class ChatUser {
  constructor(
    readonly page: Page,
    readonly userId: string,
  ) {}

  /** The connection status in the sidebar. */
  get status(): Locator {
    return this.page.getByTestId('connection-status');
  }

  /** Waits until the client is connected, over `transport` when given. */
  async connected(transport?: Transport): Promise<void> {
    await this.page.locator(`[data-testid="connection-status"][data-state="connected"]${transport ? `[data-transport=${q(transport)}]` : ''}`).waitFor();
  }

  /** First run: creates the account on this page. */
  async signUp(appUrl: string, options: { readonly deviceId: string; readonly relayUrl: string; readonly storage?: 'indexeddb' | 'memory' }): Promise<void> {
    await this.page.goto(appUrl);
    await this.page.getByTestId('signup-user').fill(this.userId);
    await this.page.getByTestId('signup-device').fill(options.deviceId);
    await this.page.locator('[data-testid="signup-advanced"] summary').click();
    await this.page.getByTestId('signup-relay').fill(options.relayUrl);
    if (options.storage) await this.page.getByTestId(`storage-${options.storage}`).check();
    await this.page.getByTestId('signup-submit').click();
    await this.page.getByTestId('me').filter({ hasText: this.userId }).waitFor();
    await this.connected();
  }

  /** Starts (or opens) a 1:1 chat by typing the user id, as a new contact. */
  async startChat(userId: string): Promise<void> {
    await this.page.getByTestId('new-chat').click();
    await this.page.getByTestId('new-chat-user').fill(userId);
    await this.page.getByTestId('new-chat-submit').click();
    await this.chatTitle(userId);
  }

  async chatTitle(title: string): Promise<void> {
    await this.page.getByTestId('chat-title').filter({ hasText: title }).waitFor();
  }

  /** The conversation-list row of `u:<user>`, or of the group named `name`. */
  chatItem(key: { readonly user: string } | { readonly group: string }): Locator {
    return 'user' in key
      ? this.page.locator(`[data-testid="chat-item"][data-chat=${q(`u:${key.user}`)}]`)
      : this.page.locator('[data-testid="chat-item"][data-chat^="g:"]').filter({ has: this.page.locator('.chat-item-title', { hasText: key.group }) });
  }

  async openChat(key: { readonly user: string } | { readonly group: string }): Promise<void> {
    await this.chatItem(key).click();
    await this.chatTitle('user' in key ? key.user : key.group);
  }

  /** A bubble with exactly this text (optionally in one direction, from one sender). */
  message(text: string, options: { readonly direction?: 'incoming' | 'outgoing'; readonly sender?: string; readonly status?: string } = {}): Locator {
    let selector = '[data-testid="message"]';
    if (options.direction) selector += `[data-direction=${q(options.direction)}]`;
    if (options.sender) selector += `[data-sender=${q(options.sender)}]`;
    if (options.status) selector += `[data-status=${q(options.status)}]`;
    return this.page.locator(selector).filter({ has: this.page.locator('.text', { hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) });
  }

  /** Types and sends a message in the open chat; resolves once the relay stored it (`sent`). */
  async send(text: string): Promise<void> {
    const input = this.page.getByTestId('composer-input');
    await input.fill(text);
    await input.press('Enter');
    await this.message(text, { direction: 'outgoing', status: 'sent' }).waitFor();
  }

  /** Waits for an incoming message in the open chat. */
  async receives(text: string, sender?: string): Promise<void> {
    await this.message(text, { direction: 'incoming', ...(sender ? { sender } : {}) }).waitFor();
  }

  /** Creates a group from the contacts picker. */
  async createGroup(name: string, members: readonly string[]): Promise<void> {
    await this.page.getByTestId('new-group').click();
    await this.page.getByTestId('group-name').fill(name);
    for (const m of members) await this.page.locator(`[data-testid="group-member"][value=${q(m)}]`).check();
    await this.page.getByTestId('group-submit').click();
    await this.chatTitle(name);
    await this.page.getByTestId('group-members').filter({ hasText: `${members.length + 1} members` }).waitFor();
  }

  /** Opens Settings, picks a transport, applies; resolves once connected over it. */
  async switchTransport(transport: Transport, fallback: 'websocket' | 'http-polling' = 'websocket'): Promise<void> {
    await this.page.getByTestId('open-settings').click();
    await this.page.getByTestId(`transport-${transport}`).check();
    if (transport === 'webrtc') await this.page.getByTestId('webrtc-fallback').selectOption(fallback);
    await this.page.getByTestId('settings-apply').click();
    await this.page.locator('[data-modal="settings"]').waitFor({ state: 'detached' });
    await this.connected(transport);
  }

  /** Reloads the page; resolves once the stored device is connected again. */
  async reload(): Promise<void> {
    await this.page.reload();
    await this.page.getByTestId('me').filter({ hasText: this.userId }).waitFor();
    await this.connected();
  }

  /** Opens the safety-number screen of the open 1:1 chat; returns the 60 digits shown. */
  async openSafetyNumber(): Promise<string> {
    await this.page.getByTestId('open-safety').click();
    const digits = this.page.getByTestId('safety-digits');
    await digits.waitFor();
    return (await digits.getAttribute('data-digits')) ?? '';
  }

  async closeModal(): Promise<void> {
    await this.page.getByTestId('modal-close').click();
    await this.page.getByTestId('modal').waitFor({ state: 'detached' });
  }
}
