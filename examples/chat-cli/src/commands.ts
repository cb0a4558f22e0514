/**
 * What each line typed at the prompt does: slash commands, and plain text sent to the
 * current chat. Every command is a few calls on the Deadbolt `Client`.
 */
import type { Client } from '@deadbolt/core';
import { isDeadboltError } from '@deadbolt/spec';
import { randomDeviceId, writeProfile, type Profile, type Settings } from './config.js';
import { openClient, startLink } from './connect.js';
import { groupLine, HELP, memberLine, messageLine, safetyNumberLines, SETUP_HELP } from './render.js';

export type Target = { readonly kind: 'user'; readonly id: string } | { readonly kind: 'group'; readonly id: string; readonly name: string };

/** The REPL's state, shared with main.ts. */
export interface Chat {
  readonly settings: Settings;
  profile: Profile | undefined;
  client: Client | undefined;
  current: Target | undefined;
  /** Prints lines above the prompt. */
  print(...lines: string[]): void;
  /** Subscribes the REPL to a new client's events (before it starts). */
  attach(client: Client): void;
}

/** Runs one line. Resolves false when the user asked to quit. */
export async function runLine(chat: Chat, line: string): Promise<boolean> {
  const text = line.trim();
  if (text === '') return true;
  if (text === '/quit' || text === '/exit') return false;
  try {
    if (!chat.client) await setupCommand(chat, text);
    else if (text.startsWith('/')) await command(chat, chat.client, text);
    else await sendText(chat, chat.client, text);
  } catch (e) {
    chat.print(describeError(e));
  }
  return true;
}

export function describeError(e: unknown): string {
  if (isDeadboltError(e, 'RATE_LIMITED')) return `error: the relay asks to slow down (${e.message}): try again in ${Math.ceil(e.details.retryAfterMs / 1000)} s`;
  if (isDeadboltError(e)) return `error: ${e.code}: ${e.message}`;
  return `error: ${e instanceof Error ? e.message : String(e)}`;
}

/** Before this device has an identity: sign up, or link to an existing user. */
async function setupCommand(chat: Chat, text: string): Promise<void> {
  const { user, device } = chat.settings;
  if ((text === '/signup' || text === '/link') && !user) throw new Error('start the CLI with --user <id> to choose your user id');
  const deviceId = device ?? randomDeviceId();
  if (text === '/signup') {
    chat.print(`Creating the identity of ${user}/${deviceId} and registering with ${chat.settings.relay}…`);
    chat.client = await openClient(chat.settings, user!, deviceId, chat.attach);
  } else if (text === '/link') {
    const link = await startLink(chat.settings, user!, deviceId);
    chat.print(`On one of ${user}'s devices, type this line (the code is good for 10 minutes):`, '', `/approve ${link.code}`, '');
    await link.completed;
    chat.print('Approved. Starting…');
    chat.client = await openClient(chat.settings, user!, deviceId, chat.attach, link);
  } else {
    chat.print('This device has no identity yet:', ...SETUP_HELP);
    return;
  }
  chat.profile = { userId: user!, deviceId, contacts: [] };
  writeProfile(chat.settings.data, chat.profile);
  chat.print(`Signed in as ${user}/${deviceId}. /help lists the commands.`);
}

async function command(chat: Chat, client: Client, text: string): Promise<void> {
  const [name, ...args] = text.split(/\s+/);
  const profile = chat.profile!;
  switch (name) {
    case '/help':
      chat.print(...HELP);
      return;
    case '/add':
    case '/to': {
      const user = need(args[0], `${name} <user>`);
      if (!profile.contacts.includes(user)) {
        profile.contacts.push(user);
        writeProfile(chat.settings.data, profile);
      }
      if (name === '/to') chat.current = { kind: 'user', id: user };
      chat.print(name === '/to' ? `Now chatting with ${user}.` : `Added ${user} to your contacts.`);
      return;
    }
    case '/contacts': {
      const conversations = await client.conversations();
      const users = [...new Set([...profile.contacts, ...conversations.map((c) => c.userId as string)])];
      if (users.length === 0) chat.print('No contacts yet: /add <user>');
      for (const user of users) {
        const verified = (await client.sessions.trust(user))?.verified ?? false;
        const last = conversations.find((c) => c.userId === user);
        chat.print(`  ${user}${verified ? '  verified' : ''}${last ? `  last message ${new Date(last.lastActivity).toLocaleString()}` : ''}`);
      }
      return;
    }
    case '/group':
      return groupCommand(chat, client, args);
    case '/groups': {
      const groups = await client.groups();
      if (groups.length === 0) chat.print('No groups yet: /group create <name> <members...>');
      for (const g of groups) chat.print(`  ${groupLine(g)}`);
      return;
    }
    case '/members': {
      const target = chat.current;
      if (target?.kind !== 'group') throw new Error('not in a group: /group <name> first');
      const group = await client.group(target.id);
      chat.print(`Members of ${target.name}:`, ...(await group!.members()).map(memberLine));
      return;
    }
    case '/history': {
      const limit = Number(args[0] ?? 20);
      const target = chat.current;
      if (!target) throw new Error('no chat selected: /to <user> or /group <name>');
      const messages = target.kind === 'user' ? await client.history(target.id, { limit }) : ((await (await client.group(target.id))?.history({ limit })) ?? []);
      if (messages.length === 0) chat.print('No messages yet.');
      for (const m of messages) chat.print(messageLine(m));
      return;
    }
    case '/safety': {
      const user = need(args[0], '/safety <user>');
      const sn = await client.safetyNumber(user);
      chat.print(...safetyNumberLines(user, sn.digits, (await client.sessions.trust(user))?.verified ?? false));
      return;
    }
    case '/verify': {
      const user = need(args[0], '/verify <user> <digits>');
      const digits = args.slice(1).join('');
      if (!/^\d{60}$/.test(digits)) throw new Error('type the 60 digits of the safety number (spaces are fine)');
      const ok = await client.verifySafetyNumber(user, digits);
      chat.print(ok ? `${user} is verified.` : `The numbers DIFFER: check them again. If they really differ, someone may be between you and ${user}: do not trust this conversation.`);
      return;
    }
    case '/devices':
      for (const d of await client.devices()) chat.print(`  ${d.deviceId}${d.thisDevice ? '  (this device)' : ''}`);
      return;
    case '/approve': {
      const device = await client.approveDevice(need(args[0], '/approve <code>'));
      chat.print(`Approved device ${device.deviceId}.`);
      return;
    }
    default:
      chat.print(`Unknown command ${name}: /help lists them.`);
  }
}

async function groupCommand(chat: Chat, client: Client, args: string[]): Promise<void> {
  if (args[0] === 'create') {
    const name = need(args[1], '/group create <name> <members...>');
    const members = args.slice(2);
    if (members.length === 0) throw new Error('name at least one member: /group create <name> <members...>');
    const group = await client.createGroup({ name, members });
    chat.current = { kind: 'group', id: group.id, name };
    chat.print(`Created group ${name} with ${members.join(', ')}. Now chatting in ${name}.`);
    return;
  }
  const key = need(args[0], '/group <name|id>');
  const groups = (await client.groups()).filter((g) => g.name === key || g.groupId.startsWith(key.toLowerCase()));
  if (groups.length !== 1) throw new Error(groups.length === 0 ? `no group ${key}: /groups lists yours` : `${groups.length} groups match ${key}: use the id`);
  chat.current = { kind: 'group', id: groups[0]!.groupId, name: groups[0]!.name };
  chat.print(`Now chatting in ${groups[0]!.name}.`);
}

async function sendText(chat: Chat, client: Client, text: string): Promise<void> {
  const target = chat.current;
  if (!target) throw new Error('no chat selected: /to <user> or /group <name>');
  if (target.kind === 'user') {
    chat.print(messageLine(await client.send(target.id, text)));
  } else {
    const group = await client.group(target.id);
    chat.print(messageLine(await group!.send(text), `#${target.name}`));
  }
}

function need(value: string | undefined, usage: string): string {
  if (!value) throw new Error(`usage: ${usage}`);
  return value;
}
