/**
 * chat-web: a web messenger on Deadbolt. On load: the first-run screen if this browser has
 * no device yet, else the main screen over the device's stored client.
 *
 * Run: `pnpm --filter @deadbolt/chat-web dev` (README.md).
 */
import './styles.css';
import { ChatApp } from './app.js';
import type { Connection } from './connect.js';
import { clearProfile, loadProfile, loadSettings, type Profile, type Settings, type StorageKind } from './settings.js';
import { showOnboarding } from './views/onboarding.js';
import { closeModal, toast } from './views/overlay.js';
import { showShell } from './views/shell.js';

const root = document.getElementById('root')!;

function firstRun(options: { notice?: string; storage?: StorageKind } = {}): void {
  showOnboarding(root, { ...options, done: (profile, settings, connection) => openApp(profile, settings, connection) });
}

function openApp(profile: Profile, settings: Settings, connection?: Connection): void {
  let detach = (): void => undefined;
  let nextStorage: StorageKind | undefined;
  const app = new ChatApp(settings, profile, {
    toast,
    signedOut: () => {
      detach();
      closeModal();
      document.title = 'Deadbolt';
      firstRun(nextStorage ? { storage: nextStorage } : {});
    },
  });
  detach = showShell(root, app, (storage) => {
    nextStorage = storage;
    void app.removeAccount();
  });
  void app.start(connection);
}

const profile = loadProfile();
if (!profile) {
  firstRun();
} else if (profile.storage === 'memory') {
  // A memory store does not outlive the page: the device is gone.
  clearProfile();
  firstRun({
    storage: 'memory',
    notice: `${profile.userId}/${profile.deviceId} kept its keys in memory, so they were lost when the page reloaded, with its history. The relay still ties ${profile.userId} to the lost key: sign up under another user id (or choose IndexedDB to keep a device across reloads).`,
  });
} else {
  openApp(profile, loadSettings());
}
