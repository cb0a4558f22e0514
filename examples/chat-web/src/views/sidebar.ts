/**
 * The left column: who this device is and its connection, the conversation list, and the
 * buttons to start chats and open devices and settings.
 *
 * @module
 */
import { chatKey, sameChat, type ChatApp, type ChatSummary, type ConnectionState } from '../app.js';
import { avatar, h, icon, listTime, replaceChildren } from '../dom.js';
import { TRANSPORT_LABELS } from '../settings.js';

export interface SidebarActions {
  newChat(): void;
  newGroup(): void;
  devices(): void;
  settings(): void;
}

const STATE_LABELS: Record<ConnectionState, string> = {
  idle: 'Offline',
  starting: 'Connecting…',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Offline',
  failed: 'Cannot reach the relay',
};

export function createSidebar(app: ChatApp, actions: SidebarActions): { readonly el: HTMLElement; render(): void; renderStatus(): void } {
  const status = h('span', { class: 'status', 'data-testid': 'connection-status' });
  const search = h('input', { type: 'search', placeholder: 'Search conversations', 'aria-label': 'Search conversations', 'data-testid': 'search' });
  const list = h('nav', { class: 'chat-list', 'aria-label': 'Conversations', 'data-testid': 'chat-list' });
  const el = h(
    'aside',
    { class: 'sidebar' },
    h(
      'header',
      { class: 'sidebar-header' },
      avatar(app.me),
      h('div', { class: 'me' }, h('strong', { 'data-testid': 'me' }, app.me), status),
      h('button', { class: 'icon-button', title: 'New chat', 'aria-label': 'New chat', 'data-testid': 'new-chat', onclick: actions.newChat }, icon('edit')),
      h('button', { class: 'icon-button', title: 'New group', 'aria-label': 'New group', 'data-testid': 'new-group', onclick: actions.newGroup }, icon('users')),
    ),
    h('div', { class: 'search' }, icon('search', 18), search),
    list,
    h(
      'footer',
      { class: 'sidebar-footer' },
      h('button', { class: 'footer-button', 'data-testid': 'open-devices', onclick: actions.devices }, icon('devices'), 'Devices'),
      h('button', { class: 'footer-button', 'data-testid': 'open-settings', onclick: actions.settings }, icon('settings'), 'Settings'),
    ),
  );
  search.addEventListener('input', () => render());

  function item(c: ChatSummary): HTMLElement {
    const trust = c.ref.kind === 'user' ? app.trust.get(c.ref.id) : undefined;
    const preview = c.preview ? `${c.previewFrom ? `${c.previewFrom}: ` : ''}${c.preview}` : c.ref.kind === 'group' ? 'No messages yet' : 'Say hello: messages are end-to-end encrypted';
    return h(
      'button',
      {
        class: `chat-item${sameChat(c.ref, app.current) ? ' active' : ''}${c.unread > 0 ? ' unread' : ''}`,
        'data-testid': 'chat-item',
        'data-chat': chatKey(c.ref),
        onclick: () => void app.openChat(c.ref),
      },
      avatar(c.ref.kind === 'group' ? c.ref.id : c.title, { group: c.ref.kind === 'group' }),
      h(
        'span',
        { class: 'chat-item-body' },
        h(
          'span',
          { class: 'chat-item-row' },
          h('span', { class: 'chat-item-title' }, c.title, trust?.verified ? h('span', { class: 'verified-mark', title: 'Verified' }, icon('shield-check', 14)) : null),
          c.lastActivity > 0 ? h('time', { class: 'chat-item-time' }, listTime(c.lastActivity)) : null,
        ),
        h(
          'span',
          { class: 'chat-item-row' },
          h('span', { class: 'chat-item-preview' }, c.member ? preview : 'You left this group'),
          c.unread > 0 ? h('span', { class: 'unread-badge', 'data-testid': 'unread' }, String(c.unread)) : null,
        ),
      ),
    );
  }

  function render(): void {
    const q = search.value.trim().toLowerCase();
    const shown = app.chats.filter((c) => q === '' || c.title.toLowerCase().includes(q) || c.preview.toLowerCase().includes(q));
    if (app.chats.length === 0) {
      replaceChildren(
        list,
        h(
          'div',
          { class: 'list-empty' },
          h('p', null, 'No conversations yet.'),
          h('button', { class: 'button primary', onclick: actions.newChat }, icon('plus', 18), 'Start a chat'),
        ),
      );
    } else if (shown.length === 0) {
      replaceChildren(list, h('div', { class: 'list-empty' }, h('p', null, `Nothing matches “${search.value}”.`)));
    } else {
      replaceChildren(list, ...shown.map(item));
    }
  }

  function renderStatus(): void {
    const transport = app.settings.transport === 'webrtc' ? `WebRTC + ${TRANSPORT_LABELS[app.settings.webrtcFallback]}` : TRANSPORT_LABELS[app.settings.transport];
    status.dataset.state = app.state;
    status.dataset.transport = app.settings.transport;
    replaceChildren(status, h('i', { class: 'dot', 'aria-hidden': 'true' }), app.state === 'connected' ? `${STATE_LABELS.connected} · ${transport}` : STATE_LABELS[app.state]);
  }

  return { el, render, renderStatus };
}
