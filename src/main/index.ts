/**
 * The Electron shell: one hardened window around the same hub that web mode
 * serves. Everything the renderer may do goes through the bridge channels,
 * and every IPC message is checked to come from our own top-level page.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  Menu,
  nativeImage,
  Notification,
  screen,
  session,
  shell,
  Tray,
  type IpcMainInvokeEvent,
  type MenuItemConstructorOptions,
  type WebContents,
} from 'electron';
import pino from 'pino';
import { bridgeChannels, err, type AppCommand } from '../shared/protocol';
import { AlertWatch } from './desktop/alert-watch';
import { isVisibleOn, loadWindowState, saveWindowState } from './desktop/window-state';
import { Hub } from './hub/hub';
import { defaultConfigDir } from './web/run';

const here = path.dirname(fileURLToPath(import.meta.url));
const rendererIndex = path.join(here, '..', 'renderer', 'index.html');
const rendererUrl = pathToFileURL(rendererIndex).href;
const preloadPath = path.join(here, '..', 'preload', 'index.cjs');
const windowStateSaveDelayMs = 500;

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

/** A 16×16 ring, drawn here so the app ships no binary asset for its tray. */
function trayIcon(): Electron.NativeImage {
  const size = 16;
  const pixels = Buffer.alloc(size * size * 4);
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) {
      const distance = Math.hypot(x - 7.5, y - 7.5);
      const on = (distance > 4.5 && distance < 7) || distance < 2;
      const offset = (y * size + x) * 4;
      // BGRA
      pixels[offset] = 0xff;
      pixels[offset + 1] = 0xa3;
      pixels[offset + 2] = 0x4a;
      pixels[offset + 3] = on ? 0xff : 0;
    }
  }
  return nativeImage.createFromBitmap(pixels, { width: size, height: size });
}

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

function buildMenu(send: (command: AppCommand) => void, openRecording: () => void): Menu {
  const template: MenuItemConstructorOptions[] = [
    {
      label: 'File',
      submenu: [
        { label: 'Connect to Agents…', accelerator: 'CmdOrCtrl+N', click: () => send({ type: 'open-connect' }) },
        { label: 'Open Recording…', accelerator: 'CmdOrCtrl+O', click: openRecording },
        { type: 'separator' },
        { role: 'quit', accelerator: 'CmdOrCtrl+Q' },
      ],
    },
    {
      label: 'Cluster',
      submenu: [{ label: 'Move Leadership…', accelerator: 'CmdOrCtrl+Shift+L', click: () => send({ type: 'open-failover' }) }],
    },
    {
      label: 'View',
      submenu: [
        { label: 'Toggle Light/Dark Theme', accelerator: 'CmdOrCtrl+Shift+T', click: () => send({ type: 'toggle-theme' }) },
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
    { role: 'windowMenu' },
  ];
  return Menu.buildFromTemplate(template);
}

/** `quorumscope start` hands the demo cluster's file over, so the window opens connected to it. */
async function demoProfile(): Promise<{ name: string; endpoints: string[]; token: string } | null> {
  const file = process.env.QUORUMSCOPE_CONNECT_FILE;
  if (file === undefined) return null;
  try {
    const cluster = JSON.parse(await readFile(file, 'utf8')) as { operatorToken?: unknown; nodes?: Array<{ http?: unknown }> };
    const endpoints = (cluster.nodes ?? []).map((node) => node.http).filter((endpoint): endpoint is string => typeof endpoint === 'string');
    if (typeof cluster.operatorToken !== 'string' || endpoints.length === 0) return null;
    return { name: 'Demo cluster', endpoints, token: cluster.operatorToken };
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }
  app.enableSandbox();
  await app.whenReady();
  const logger = pino({ level: 'info', base: undefined });
  const configDir = defaultConfigDir();

  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [contentSecurityPolicy] } });
  });
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));

  const hub = await Hub.create({
    configDir,
    appInfo: { version: app.getVersion(), mode: 'desktop', platform: process.platform },
    clock: { nowMs: () => Date.now() },
    logger,
  });
  if (!hub.ok) {
    logger.error({ error: hub.error.message }, 'cannot start the hub');
    app.exit(1);
    return;
  }
  const demo = await demoProfile();
  if (demo !== null) await hub.data.connectProfile(demo);

  const saved = await loadWindowState(configDir);
  const placed = saved !== null && isVisibleOn(saved, screen.getAllDisplays().map((display) => display.workArea)) ? saved : null;
  let window: BrowserWindow | null = new BrowserWindow({
    width: placed?.width ?? 1440,
    height: placed?.height ?? 900,
    ...(placed === null ? {} : { x: placed.x, y: placed.y }),
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
  if (placed?.maximized) window.maximize();
  hardenContents(window.webContents);
  app.on('web-contents-created', (_event, contents) => hardenContents(contents));
  app.on('second-instance', () => {
    if (window === null) return;
    if (window.isMinimized()) window.restore();
    window.focus();
  });

  const send = (command: AppCommand) => {
    if (window !== null && !window.isDestroyed()) window.webContents.send(bridgeChannels.command, command);
  };
  // File → Open: the main process picks the file and the hub opens it; the replay reaches the window in the next snapshot.
  const openRecording = () => {
    void dialog.showOpenDialog({ title: 'Open a recording', properties: ['openFile'], filters: [{ name: 'Quorumscope recordings', extensions: ['qsrec'] }] }).then(async (choice) => {
      const file = choice.filePaths[0];
      if (choice.canceled || file === undefined) return;
      const opened = await hub.data.request('replay:open', { path: file });
      if (!opened.ok) void dialog.showMessageBox({ type: 'error', message: 'Cannot open the recording', detail: opened.error.message });
    });
  };
  Menu.setApplicationMenu(buildMenu(send, openRecording));

  let saveTimer: NodeJS.Timeout | null = null;
  const rememberWindow = () => {
    if (saveTimer !== null) clearTimeout(saveTimer);
    saveTimer = setTimeout(() => {
      if (window === null || window.isDestroyed()) return;
      const bounds = window.getNormalBounds();
      void saveWindowState(configDir, { ...bounds, maximized: window.isMaximized() }).catch(() => undefined);
    }, windowStateSaveDelayMs);
  };
  window.on('resize', rememberWindow);
  window.on('move', rememberWindow);
  window.on('maximize', rememberWindow);
  window.on('unmaximize', rememberWindow);

  const tray = new Tray(trayIcon());
  tray.setToolTip('Quorumscope');
  tray.on('click', () => window?.show());
  const alerts = new AlertWatch();

  const subscription = hub.data.subscribe((snapshot) => {
    if (window !== null && !window.isDestroyed()) window.webContents.send(bridgeChannels.snapshot, snapshot);
    const { activeCount, fresh } = alerts.update(snapshot);
    tray.setToolTip(activeCount === 0 ? 'Quorumscope: no active alerts' : `Quorumscope: ${activeCount} active alert${activeCount === 1 ? '' : 's'}`);
    if (process.platform === 'darwin') tray.setTitle(activeCount === 0 ? '' : String(activeCount));
    app.setBadgeCount(activeCount);
    if (Notification.isSupported()) for (const notice of fresh) new Notification({ title: notice.title, body: notice.body }).show();
  });
  ipcMain.handle(bridgeChannels.request, async (event, name: unknown, arg: unknown) => {
    if (!isTrustedSender(event, window)) return err('forbidden', 'request from an untrusted frame');
    return hub.data.request(name, arg, subscription);
  });

  window.once('ready-to-show', () => window?.show());
  window.on('closed', () => {
    window = null;
  });
  app.on('window-all-closed', () => {
    subscription.unsubscribe();
    tray.destroy();
    hub.data.close();
    app.quit();
  });
  await window.loadURL(rendererUrl);
}

void main();
