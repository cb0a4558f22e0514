/**
 * The app's state and what the user can do, over one Deadbolt `Client`: the conversation
 * list, the open chat, sending with delivery states, trust (safety numbers), groups and
 * switching transport. Views (src/views/) render it and call its methods; it tells them
 * what changed.
 *
 * Everything shown comes from the client's store through its public API (`history`,
 * `conversations`, `groups`, `sessions.trust`), so a reload shows the same thing.
 *
 * @module
 */
import type { Client, GroupInfo, StoredGroupMessage, StoredMessage, DeliveryStatus } from '@deadbolt/core';
import type { TransportState } from '@deadbolt/spec';
import type { WebRtcTransport } from '@deadbolt/transport-webrtc';
import { deleteDeviceStorage, describeError, openClient, type Connection } from './connect.js';
import { clearProfile, saveProfile, saveSettings, type Profile, type Settings } from './settings.js';

/** A conversation: with a user, or a group (by its 64-hex id). */
export type ChatRef = { readonly kind: 'user'; readonly id: string } | { readonly kind: 'group'; readonly id: string };

/** `u:<userId>` or `g:<groupId>`. */
export const chatKey = (ref: ChatRef): string => `${ref.kind === 'user' ? 'u' : 'g'}:${ref.id}`;
export const sameChat = (a: ChatRef | undefined, b: ChatRef | undefined): boolean => a !== undefined && b !== undefined && a.kind === b.kind && a.id === b.id;

/** One bubble. */
export interface MessageView {
  /** The message id, or `local:<n>` while this page is sending it. */
  readonly key: string;
  readonly direction: 'incoming' | 'outgoing';
  readonly senderUser: string;
  readonly senderDevice: string;
  readonly text: string;
  /** Sent (outgoing) or received (incoming) time on this device's clock. */
  readonly at: number;
  /**
   * `pending` while sending, `sent` once the relay stored it, `failed`; `received` for
   * incoming. `stale` is a `pending` record this page is not sending (another tab's send
   * in flight, or one a closed page left, which core marks `failed` at its next start):
   * shown as not delivered.
   */
  readonly status: DeliveryStatus | 'stale';
  /** The sender's key was not the trusted one when it arrived. */
  readonly untrusted: boolean;
  /** Its place in the stored history (core's `sortKey`); absent while this page sends it. */
  readonly sortKey?: string;
}

/** A row of the conversation list. */
export interface ChatSummary {
  readonly ref: ChatRef;
  readonly title: string;
  /** The last message's text (empty when there is none). */
  readonly preview: string;
  /** Who wrote the last message, when the list shows it: `You`, or the sender in a group. */
  readonly previewFrom: string | undefined;
  readonly lastActivity: number;
  readonly unread: number;
  /** Groups: false once this user left or was removed. */
  readonly member: boolean;
}

/** What this device knows about a contact's key. */
export interface TrustView {
  /** A key is known (a message was exchanged). */
  readonly known: boolean;
  readonly verified: boolean;
  /** The contact's key changed and the change is not accepted yet. */
  readonly pending: boolean;
}

/** The client's connection state, plus the app's own phases around it. */
export type ConnectionState = TransportState | 'starting' | 'failed';

export type Change = 'chats' | 'chat' | 'messages' | 'status' | 'devices';

export interface AppHooks {
  /** A short message at the bottom of the screen. */
  toast(text: string, kind?: 'info' | 'warn' | 'error'): void;
  /** The account was removed from this browser: back to the first-run screen. */
  signedOut(): void;
}

const decoder = new TextDecoder();
/** Messages shown when a chat opens, and read per "earlier messages" page (core returns at most 1,000 per read). */
const HISTORY_LIMIT = 100;
/** Messages read per conversation for the list (last message and unread count). */
const LIST_LIMIT = 50;
/** WebRTC: the least time between two attempts to link to one device (a link attempt lasts up to 10 s). */
const PRECONNECT_INTERVAL_MS = 15_000;

function toView(m: StoredMessage | StoredGroupMessage, inFlight: boolean): MessageView {
  return {
    key: m.id,
    direction: m.direction,
    senderUser: m.sender.userId,
    senderDevice: m.sender.deviceId,
    text: decoder.decode(m.body),
    at: m.direction === 'incoming' ? m.receivedAt : m.sentAt,
    status: m.status === 'pending' && !inFlight ? 'stale' : m.status,
    untrusted: m.untrusted,
    sortKey: m.sortKey,
  };
}

async function trustView(client: Client, userId: string): Promise<TrustView> {
  const t = await client.sessions.trust(userId);
  return { known: t !== undefined, verified: t?.verified ?? false, pending: t?.pendingKey !== undefined };
}

export class ChatApp {
  settings: Settings;
  profile: Profile;
  client: Client | undefined;
  /** The WebRTC transport, when the settings choose it (for each contact's path). */
  webrtc: WebRtcTransport | undefined;
  state: ConnectionState = 'starting';
  /** Why the client could not start (shown with a retry button). */
  startError: string | undefined;
  chats: ChatSummary[] = [];
  current: ChatRef | undefined;
  /** The open group, as stored now. */
  currentGroup: GroupInfo | undefined;
  messages: MessageView[] = [];
  /** The open chat has messages older than those shown (one page is read at a time). */
  hasEarlier = false;
  /** Pages read with "earlier messages" for the open chat, oldest first (kept when the newest page is read again). */
  #earlier: MessageView[] = [];
  readonly trust = new Map<string, TrustView>();
  /** userId -> that user's devices reached over a direct WebRTC link now. */
  readonly direct = new Map<string, Set<string>>();
  readonly #hooks: AppHooks;
  readonly #listeners = new Set<(changes: ReadonlySet<Change>) => void>();
  #pendingChanges = new Set<Change>();
  #chatsRun: Promise<void> | undefined;
  #chatsDirty = false;
  #localSeq = 0;
  /** userId/deviceId -> when a direct link to it was last attempted (WebRTC). */
  readonly #preconnected = new Map<string, number>();
  /** Sends in flight, by chat key: their bubbles stand in for the `pending` history records. */
  readonly #inFlight = new Map<string, number>();

  constructor(settings: Settings, profile: Profile, hooks: AppHooks) {
    this.settings = settings;
    this.profile = profile;
    this.#hooks = hooks;
  }

  /** Calls `listener` (once per turn of the event loop at most) with what changed. */
  subscribe(listener: (changes: ReadonlySet<Change>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(...changes: Change[]): void {
    const first = this.#pendingChanges.size === 0;
    for (const c of changes) this.#pendingChanges.add(c);
    if (!first) return;
    queueMicrotask(() => {
      const batch = this.#pendingChanges;
      this.#pendingChanges = new Set();
      for (const l of [...this.#listeners]) l(batch);
    });
  }

  get me(): string {
    return this.profile.userId;
  }

  // --- connection --------------------------------------------------------------------

  /**
   * Opens the client with the current settings and starts it (with `connection`, takes
   * over one the first-run screen already started). The conversations show as soon as the
   * store is open. A client that cannot start stays open for reading its history, with a
   * banner and a retry.
   */
  async start(connection?: Connection): Promise<void> {
    this.state = 'starting';
    this.startError = undefined;
    this.#emit('status');
    try {
      const opened = connection ?? (await openClient(this.settings, this.profile));
      // Subscribed before start(): messages waiting at the relay arrive during it.
      this.#attach(opened);
      if (this.current) void this.#loadMessages();
      if (!connection) await opened.client.start();
      if (this.state === 'starting' || this.state === 'idle') this.state = 'connected';
    } catch (e) {
      this.state = 'failed';
      this.startError = describeError(e);
      console.warn('chat-web: the client did not start', e);
    }
    this.#emit('status', 'chat');
    await this.refreshChats();
    if (this.current) await this.#loadMessages();
    if (this.current?.kind === 'user') void this.#preconnect(this.current.id);
  }

  /** Subscribes to a new client's events (before it starts: waiting messages arrive during start). */
  #attach({ client, webrtc }: Connection): void {
    this.client = client;
    this.webrtc = webrtc;
    this.direct.clear();
    this.#preconnected.clear();
    const live = (): boolean => this.client === client;
    client.on('transport-state-changed', ({ state }) => {
      if (!live()) return;
      this.state = state;
      this.#emit('status');
    });
    client.on('message-received', (m) => live() && this.#received({ kind: 'user', id: m.conversation }, m));
    client.on('group-message-received', (m) => live() && this.#received({ kind: 'group', id: m.groupId }, m));
    client.on('group-invited', (g) => {
      if (!live()) return;
      this.#hooks.toast(`You were added to the group “${g.name}”.`);
      void this.refreshChats();
    });
    client.on('group-changed', (g) => {
      if (!live()) return;
      if (this.current?.kind === 'group' && this.current.id === g.groupId) {
        this.currentGroup = g;
        this.#emit('chat');
      }
      void this.refreshChats();
    });
    client.on('identity-changed', ({ userId }) => {
      if (!live()) return;
      this.#hooks.toast(`${userId}'s safety number changed. Review it before you send anything.`, 'warn');
      void this.refreshTrust(userId);
    });
    client.on('devices-changed', () => live() && this.#emit('devices'));
    client.on('group-delivery-failed', ({ devices, code }) => {
      if (live()) this.#hooks.toast(`${devices.length} device(s) in the group could not be given the key (${code}); they get it with the next message.`, 'warn');
    });
    client.on('message-rejected', ({ from, code }) => console.warn(`chat-web: a message from ${from.userId} was refused (${code})`));
    client.on('group-rejected', ({ code }) => console.warn(`chat-web: group traffic refused (${code})`));
    client.on('error', (e) => console.warn('chat-web: background error', e));
    webrtc?.onPathChange(({ peer, path }) => {
      if (!live()) return;
      const set = this.direct.get(peer.userId) ?? new Set<string>();
      if (path === 'direct') set.add(peer.deviceId);
      else set.delete(peer.deviceId);
      this.direct.set(peer.userId, set);
      this.#emit('chat');
    });
    void this.refreshChats(); // from the store, while the client starts
  }

  /**
   * Switches to new connection settings: the client is closed and created again over the
   * same storage, so identity, sessions and history carry over; what arrives meanwhile
   * waits in the relay's mailbox.
   */
  async applySettings(next: Settings): Promise<void> {
    saveSettings(next);
    this.settings = next;
    const old = this.client;
    this.client = undefined;
    this.webrtc = undefined;
    this.state = 'starting';
    this.#emit('status', 'chat');
    await old?.close().catch((e: unknown) => console.warn('chat-web: close failed', e));
    await this.start();
  }

  /** Closes and reopens with the same settings (after a failed start). */
  retry(): Promise<void> {
    return this.applySettings(this.settings);
  }

  /** Removes this account from this browser: its keys and history here are deleted. */
  async removeAccount(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => undefined);
    await deleteDeviceStorage(this.profile);
    clearProfile();
    this.#hooks.signedOut();
  }

  #requireClient(): Client {
    if (!this.client || this.state === 'failed') throw new Error('Not connected to the relay: check Settings.');
    return this.client;
  }

  // --- conversations -----------------------------------------------------------------

  /** Reloads the conversation list (coalesced: calls during a reload cause one more). */
  refreshChats(): Promise<void> {
    this.#chatsDirty = true;
    this.#chatsRun ??= (async () => {
      while (this.#chatsDirty) {
        this.#chatsDirty = false;
        const client = this.client;
        if (!client) break;
        try {
          this.chats = await this.#loadChats(client);
          this.#emit('chats');
          this.#updateTitle();
        } catch (e) {
          if (this.client === client) console.warn('chat-web: could not read the conversation list', e);
        }
      }
      this.#chatsRun = undefined;
    })();
    return this.#chatsRun;
  }

  async #loadChats(client: Client): Promise<ChatSummary[]> {
    const [conversations, groups] = await Promise.all([client.conversations(), client.groups()]);
    const out: ChatSummary[] = [];
    for (const c of conversations) {
      const ref: ChatRef = { kind: 'user', id: c.userId };
      this.trust.set(c.userId, await trustView(client, c.userId));
      out.push(this.#summary(ref, c.userId, await client.history(c.userId, { limit: LIST_LIMIT }), c.lastActivity, true));
    }
    for (const contact of this.profile.contacts) {
      if (conversations.some((c) => c.userId === contact)) continue;
      out.push({ ref: { kind: 'user', id: contact }, title: contact, preview: '', previewFrom: undefined, lastActivity: 0, unread: 0, member: true });
    }
    for (const g of groups) {
      const history = (await (await client.group(g.groupId))?.history({ limit: LIST_LIMIT })) ?? [];
      out.push(this.#summary({ kind: 'group', id: g.groupId }, g.name, history, g.lastActivity, g.member));
    }
    return out.sort((a, b) => b.lastActivity - a.lastActivity || a.title.localeCompare(b.title));
  }

  #summary(ref: ChatRef, title: string, history: readonly (StoredMessage | StoredGroupMessage)[], lastActivity: number, member: boolean): ChatSummary {
    const last = history.at(-1);
    const read = this.profile.lastRead[chatKey(ref)] ?? 0;
    const open = sameChat(ref, this.current);
    const unread = open ? 0 : history.filter((m) => m.direction === 'incoming' && m.receivedAt > read).length;
    const previewFrom = last?.direction === 'outgoing' ? 'You' : ref.kind === 'group' ? last?.sender.userId : undefined;
    return { ref, title, preview: last ? decoder.decode(last.body) : '', previewFrom, lastActivity, unread, member };
  }

  #updateTitle(): void {
    const unread = this.chats.reduce((n, c) => n + c.unread, 0);
    document.title = unread > 0 ? `(${unread}) Deadbolt` : 'Deadbolt';
  }

  /** Adds a user id to the contacts (kept in this browser's profile). */
  addContact(userId: string): void {
    if (userId === this.me || this.profile.contacts.includes(userId)) return;
    this.#saveProfile({ ...this.profile, contacts: [...this.profile.contacts, userId] });
    void this.refreshChats();
  }

  #saveProfile(profile: Profile): void {
    this.profile = profile;
    saveProfile(profile);
  }

  #markRead(ref: ChatRef): void {
    this.#saveProfile({ ...this.profile, lastRead: { ...this.profile.lastRead, [chatKey(ref)]: Date.now() } });
  }

  /** Opens a conversation: its history from the store, its trust state, its direct link. */
  async openChat(ref: ChatRef): Promise<void> {
    this.current = ref;
    this.currentGroup = undefined;
    this.messages = [];
    this.#earlier = [];
    this.hasEarlier = false;
    this.#markRead(ref);
    this.chats = this.chats.map((c) => (sameChat(c.ref, ref) ? { ...c, unread: 0 } : c));
    this.#updateTitle();
    this.#emit('chat', 'messages', 'chats');
    await this.#loadMessages();
    if (ref.kind === 'user') {
      await this.refreshTrust(ref.id);
      void this.#preconnect(ref.id);
    }
  }

  /** Reads the open chat again from the store (after this device changed a group: changes made here are not echoed as events). */
  refreshOpenChat(): Promise<void> {
    return this.#loadMessages();
  }

  closeChat(): void {
    this.current = undefined;
    this.currentGroup = undefined;
    this.messages = [];
    this.#earlier = [];
    this.hasEarlier = false;
    this.#emit('chat', 'messages', 'chats');
  }

  async #loadMessages(): Promise<void> {
    const ref = this.current;
    const client = this.client;
    if (!ref || !client) return;
    try {
      let history: (StoredMessage | StoredGroupMessage)[];
      let group: GroupInfo | undefined;
      if (ref.kind === 'user') {
        history = await client.history(ref.id, { limit: HISTORY_LIMIT });
      } else {
        const handle = await client.group(ref.id);
        history = (await handle?.history({ limit: HISTORY_LIMIT })) ?? [];
        group = await handle?.info();
      }
      if (!sameChat(ref, this.current) || client !== this.client) return;
      const sending = (this.#inFlight.get(chatKey(ref)) ?? 0) > 0;
      // While this page sends, its own bubbles stand for the `pending` records.
      const stored = history.filter((m) => !(sending && m.status === 'pending')).map((m) => toView(m, false));
      const local = this.messages.filter((m) => m.key.startsWith('local:') && !stored.some((s) => s.key === m.key));
      const earlier = this.#earlier.filter((m) => !stored.some((s) => s.key === m.key));
      if (earlier.length === 0) this.hasEarlier = history.length === HISTORY_LIMIT;
      this.messages = [...earlier, ...stored, ...local];
      this.currentGroup = group;
      this.#emit('messages', 'chat');
    } catch (e) {
      if (client === this.client) this.#hooks.toast(`Could not read this conversation: ${describeError(e)}`, 'error');
    }
  }

  /**
   * Reads the page of history before the oldest message shown: one reverse range read in
   * core (`history({ limit, before })`), however long the conversation.
   */
  async loadEarlier(): Promise<void> {
    const ref = this.current;
    const client = this.client;
    const oldest = this.messages.find((m) => m.sortKey !== undefined)?.sortKey;
    if (!ref || !client || oldest === undefined) return;
    try {
      const options = { limit: HISTORY_LIMIT, before: oldest };
      const page = ref.kind === 'user' ? await client.history(ref.id, options) : ((await (await client.group(ref.id))?.history(options)) ?? []);
      if (!sameChat(ref, this.current) || client !== this.client) return;
      const views = page.map((m) => toView(m, false)).filter((v) => !this.messages.some((m) => m.key === v.key));
      this.#earlier = [...views, ...this.#earlier];
      this.messages = [...views, ...this.messages];
      this.hasEarlier = page.length === HISTORY_LIMIT;
      this.#emit('messages');
    } catch (e) {
      if (client === this.client) this.#hooks.toast(`Could not read earlier messages: ${describeError(e)}`, 'error');
    }
  }

  #received(ref: ChatRef, m: StoredMessage | StoredGroupMessage): void {
    if (sameChat(ref, this.current)) {
      if (!this.messages.some((v) => v.key === m.id)) {
        const view = toView(m, false);
        // Keep this page's sends in flight last.
        const firstLocal = this.messages.findIndex((v) => v.key.startsWith('local:'));
        if (firstLocal < 0) this.messages.push(view);
        else this.messages.splice(firstLocal, 0, view);
      }
      this.#markRead(ref);
      this.#emit('messages');
      if (ref.kind === 'user') void this.#preconnect(ref.id);
    }
    void this.refreshChats();
  }

  /** Sends to the open chat; the bubble shows `pending`, then `sent` or `failed`. */
  async send(text: string): Promise<void> {
    const ref = this.current;
    const body = text.trim();
    if (!ref || body.length === 0) return;
    const key = `local:${++this.#localSeq}`;
    const local: MessageView = { key, direction: 'outgoing', senderUser: this.me, senderDevice: this.profile.deviceId, text: body, at: Date.now(), status: 'pending', untrusted: false };
    const chat = chatKey(ref);
    this.#inFlight.set(chat, (this.#inFlight.get(chat) ?? 0) + 1);
    this.messages.push(local);
    this.#emit('messages');
    let result: MessageView;
    try {
      const client = this.#requireClient();
      const record = ref.kind === 'user' ? await client.send(ref.id, body) : await this.#group(client, ref.id).then((g) => g.send(body));
      result = toView(record, true);
    } catch (e) {
      result = { ...local, status: 'failed' };
      this.#hooks.toast(describeError(e, { peer: ref.kind === 'user' ? ref.id : 'A member' }), 'error');
      if (ref.kind === 'user') void this.refreshTrust(ref.id);
    } finally {
      this.#inFlight.set(chat, (this.#inFlight.get(chat) ?? 1) - 1);
    }
    if (sameChat(ref, this.current)) {
      const at = this.messages.findIndex((m) => m.key === key);
      if (at >= 0) this.messages.splice(at, 1, result);
      this.#emit('messages');
    }
    void this.refreshChats();
    if (ref.kind === 'user') void this.#preconnect(ref.id);
  }

  async #group(client: Client, groupId: string) {
    const group = await client.group(groupId);
    if (!group) throw new Error('This device does not know that group.');
    return group;
  }

  /** Creates a group with this user as its admin and opens it. */
  async createGroup(name: string, members: readonly string[]): Promise<void> {
    const client = this.#requireClient();
    for (const m of members) this.addContact(m);
    const group = await client.createGroup({ name, members });
    await this.refreshChats();
    await this.openChat({ kind: 'group', id: group.id });
  }

  // --- trust -------------------------------------------------------------------------

  async refreshTrust(userId: string): Promise<TrustView> {
    const client = this.client;
    let view: TrustView = { known: false, verified: false, pending: false };
    if (client) {
      try {
        view = await trustView(client, userId);
      } catch (e) {
        console.warn('chat-web: could not read trust', e);
      }
    }
    this.trust.set(userId, view);
    this.#emit('chat', 'chats');
    return view;
  }

  // --- WebRTC ------------------------------------------------------------------------

  /**
   * On WebRTC, sets up direct links to the devices of the contact whose chat is open: when
   * it opens, after each message either way, and after reconnecting. Both sides doing so
   * is what makes a link: the transport answers a device's offer only when it has talked
   * to that user itself since it started, or offered a link to that device.
   */
  async #preconnect(userId: string): Promise<void> {
    const webrtc = this.webrtc;
    const client = this.client;
    if (!webrtc || !client || this.state !== 'connected') return;
    try {
      for (const device of await client.sessions.devices(userId)) {
        const key = `${device.userId}/${device.deviceId}`;
        const last = this.#preconnected.get(key) ?? -Infinity;
        // One attempt at a time per device, at most one per PRECONNECT_INTERVAL_MS: each is an offer through the relay.
        if (webrtc.path(device) === 'direct' || Date.now() - last < PRECONNECT_INTERVAL_MS) continue;
        this.#preconnected.set(key, Date.now());
        void webrtc.preconnect(device).catch(() => false);
      }
    } catch (e) {
      console.warn('chat-web: preconnect', e);
    }
  }

  /** `direct` when a direct link to at least one of the user's devices is open. */
  pathTo(userId: string): 'direct' | 'relay' {
    return (this.direct.get(userId)?.size ?? 0) > 0 ? 'direct' : 'relay';
  }
}
