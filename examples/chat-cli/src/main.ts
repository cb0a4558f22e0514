/**
 * chat-cli: a terminal chat on Deadbolt. Reads settings, opens this device's client (or
 * waits for /signup or /link on the first run), then runs a readline prompt; incoming
 * messages are printed above the prompt as they arrive.
 *
 * Run: `pnpm --filter @deadbolt/chat-cli start --data ./.chat/alice --user alice` (README.md).
 */
import { createInterface } from 'node:readline';
import type { Client } from '@deadbolt/core';
import { describeError, runLine, type Chat } from './commands.js';
import { loadSettings, readProfile, type Settings } from './config.js';
import { openClient } from './connect.js';
import { dim, groupLine, messageLine, SETUP_HELP, warn } from './render.js';

async function main(): Promise<void> {
  let settings: Settings;
  try {
    settings = loadSettings(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
    return;
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  const prompt = (): string => {
    const c = chat.current;
    return c === undefined ? '> ' : c.kind === 'group' ? `#${c.name}> ` : `@${c.id}> `;
  };
  const chat: Chat = {
    settings,
    profile: readProfile(settings.data),
    client: undefined,
    current: undefined,
    print: (...lines) => {
      // Clear the half-typed prompt line, print, then redraw the prompt and what was typed.
      if (process.stdout.isTTY) process.stdout.write('\r\x1b[2K');
      for (const l of lines) process.stdout.write(`${l}\n`);
      rl.setPrompt(prompt());
      rl.prompt(true);
    },
    attach: (client) => subscribe(chat, client),
  };

  /** Opens the client if this device has an identity; resolves false if that failed. */
  const open = async (): Promise<boolean> => {
    if (!chat.profile) {
      chat.print(`New device in ${settings.data}.`, ...SETUP_HELP);
      return true;
    }
    const { userId, deviceId } = chat.profile;
    chat.print(dim(`Connecting as ${userId}/${deviceId} to ${settings.relay} (${settings.transport})…`));
    try {
      chat.client = await openClient(settings, userId, deviceId, chat.attach);
    } catch (e) {
      chat.print(describeError(e));
      process.exitCode = 1;
      return false;
    }
    chat.print(`Signed in as ${userId}/${deviceId}. /help lists the commands.`);
    return true;
  };

  const quit = async (): Promise<void> => {
    rl.close();
    await chat.client?.close().catch((e: unknown) => console.error(describeError(e)));
    process.exit();
  };
  // Lines run one at a time, in order, after the client is open (lines typed or piped in
  // meanwhile wait their turn).
  let queue = open();
  void queue.then(async (ok) => {
    if (!ok) await quit();
  });
  rl.on('line', (line) => {
    queue = queue.then(async (running) => {
      if (!running) return false;
      const more = await runLine(chat, line);
      if (!more) await quit();
      else chat.print();
      return more;
    });
  });
  rl.on('close', () => void queue.then(quit));
}

/** Prints what arrives, wherever the user is. */
function subscribe(chat: Chat, client: Client): void {
  const groupName = async (id: string): Promise<string> => (await (await client.group(id))?.info())?.name ?? id.slice(0, 8);
  client.on('message-received', (m) => {
    const here = chat.current?.kind === 'user' && chat.current.id === m.conversation;
    chat.print(messageLine(m, here ? undefined : `@${m.conversation}`));
  });
  client.on('group-message-received', (m) => {
    void groupName(m.groupId).then((name) => chat.print(messageLine(m, `#${name}`)));
  });
  client.on('group-invited', (g) => chat.print(`You were added to the group ${groupLine(g)}: /group ${g.name}`));
  client.on('group-changed', (g) => chat.print(dim(`Group changed: ${groupLine(g)}`)));
  client.on('identity-changed', ({ userId }) => chat.print(warn(`${userId}'s key CHANGED: sending to them is blocked. Compare /safety ${userId} before trusting them again.`)));
  client.on('devices-changed', ({ userId, removed }) => {
    if (chat.client !== client) return; // still starting: this is the lists being fetched, not news
    if (userId === client.address.userId) chat.print(dim('Your devices changed: /devices lists them.'));
    else if (removed.length > 0) chat.print(dim(`${userId} removed ${removed.length} device(s).`));
  });
  client.on('group-delivery-failed', ({ groupId, devices, code }) => chat.print(warn(`${devices.length} device(s) in ${groupId.slice(0, 8)} not reached: ${code}`)));
  client.on('transport-state-changed', ({ state }) => {
    if (state === 'reconnecting') chat.print(dim('relay: reconnecting…'));
  });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
