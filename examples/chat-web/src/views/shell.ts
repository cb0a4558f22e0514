/**
 * The main screen: the sidebar and the chat pane side by side, re-rendered from the app's
 * change notifications.
 *
 * @module
 */
import type { ChatApp } from '../app.js';
import { h } from '../dom.js';
import type { StorageKind } from '../settings.js';
import { createChatPane } from './chat.js';
import { openDevices } from './devices.js';
import { openGroupInfo } from './group-info.js';
import { openNewChat, openNewGroup } from './new-chat.js';
import { openSafetyNumber } from './safety.js';
import { openSettings } from './settings-view.js';
import { createSidebar } from './sidebar.js';

/** Builds the main screen in `root`; returns a function that detaches it from the app. */
export function showShell(root: HTMLElement, app: ChatApp, startOver: (storage: StorageKind) => void): () => void {
  const settings = (): void => openSettings(app, startOver);
  const sidebar = createSidebar(app, {
    newChat: () => openNewChat(app),
    newGroup: () => openNewGroup(app),
    devices: () => openDevices(app),
    settings,
  });
  const chat = createChatPane(app, {
    safety: (userId) => openSafetyNumber(app, userId),
    groupInfo: (groupId) => openGroupInfo(app, groupId),
    newChat: () => openNewChat(app),
    settings,
  });
  const layout = h('div', { class: 'app', 'data-testid': 'app' }, sidebar.el, chat.el);
  root.replaceChildren(layout);
  sidebar.render();
  sidebar.renderStatus();
  chat.render();
  return app.subscribe((changes) => {
    if (changes.has('status')) sidebar.renderStatus();
    if (changes.has('chats') || changes.has('chat')) sidebar.render();
    if (changes.has('chat') || changes.has('status') || changes.has('chats')) chat.render();
    if (changes.has('messages')) chat.renderMessages();
    layout.classList.toggle('has-chat', app.current !== undefined);
  });
}
