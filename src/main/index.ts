/**
 * The Electron shell: one hardened window around the same hub that web mode
 * serves. Everything the renderer may do goes through the bridge channels,
 * and every IPC message is checked to come from our own top-level page.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { app, BrowserWindow, ipcMain, session, shell, type IpcMainInvokeEvent, type WebContents } from 'electron';
import pino from 'pino';
import { bridgeChannels, err } from '../shared/protocol';
import { Hub } from './hub/hub';
import { defaultConfigDir } from './web/run';

const here = path.dirname(fileURLToPath(import.meta.url));
const rendererIndex = path.join(here, '..', 'renderer', 'index.html');
const rendererUrl = pathToFileURL(rendererIndex).href;
const preloadPath = path.join(here, '..', 'preload', 'index.cjs');

const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Only our own renderer page, as the top frame, may use the bridge. */
function isTrustedSender(event: IpcMainInvokeEvent, window: BrowserWindow | null): boolean {
  const frame = event.senderFrame;
  return (
    window !== null &&
    event.sender === window.webContents &&
    frame !== null &&
    frame === event.sender.mainFrame &&
    frame.url.split('#')[0] === rendererUrl
  );
}

function hardenContents(contents: WebContents): void {
  contents.on('will-navigate', (event) => event.preventDefault());
  contents.on('will-redirect', (event) => event.preventDefault());
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    // Links to documentation open in the system browser; nothing opens inside the app.
    if (/^https:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
}

async function main(): Promise<void> {
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }
  app.enableSandbox();
  await app.whenReady();
  const logger = pino({ level: 'info', base: undefined });

  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [contentSecurityPolicy] } });
  });
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));

  const hub = await Hub.create({
    configDir: defaultConfigDir(),
    appInfo: { version: app.getVersion(), mode: 'desktop', platform: process.platform },
    clock: { nowMs: () => Date.now() },
    logger,
  });
  if (!hub.ok) {
    logger.error({ error: hub.error.message }, 'cannot start the hub');
    app.exit(1);
    return;
  }

  let window: BrowserWindow | null = new BrowserWindow({
    width: 1440,
    height: 900,
    minWidth: 1024,
    minHeight: 700,
    title: 'Quorumscope',
    backgroundColor: '#0f1419',
    show: false,
    webPreferences: {
      preload: preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      spellcheck: false,
    },
  });
  hardenContents(window.webContents);
  app.on('web-contents-created', (_event, contents) => hardenContents(contents));
  app.on('second-instance', () => {
    if (window === null) return;
    if (window.isMinimized()) window.restore();
    window.focus();
  });

  ipcMain.handle(bridgeChannels.request, async (event, name: unknown, arg: unknown) => {
    if (!isTrustedSender(event, window)) return err('forbidden', 'request from an untrusted frame');
    return hub.data.request(name, arg);
  });
  const unsubscribe = hub.data.subscribe((snapshot) => {
    if (window !== null && !window.isDestroyed()) window.webContents.send(bridgeChannels.snapshot, snapshot);
  });

  window.once('ready-to-show', () => window?.show());
  window.on('closed', () => {
    window = null;
  });
  app.on('window-all-closed', () => {
    unsubscribe();
    hub.data.close();
    app.quit();
  });
  await window.loadURL(rendererUrl);
}

void main();
