// The application menu as plain data: Electron's roles bring their usual labels and shortcuts
// (Ctrl+Q, Ctrl+W, Ctrl+C, Ctrl+R, Ctrl+Plus, F11, …); the glue builds it with
// Menu.buildFromTemplate and turns `link` items into an allowlisted openExternal.
export type MenuRole =
  | 'quit'
  | 'close'
  | 'undo'
  | 'redo'
  | 'cut'
  | 'copy'
  | 'paste'
  | 'selectAll'
  | 'reload'
  | 'forceReload'
  | 'toggleDevTools'
  | 'resetZoom'
  | 'zoomIn'
  | 'zoomOut'
  | 'togglefullscreen'
  | 'minimize'
  | 'about';

export type MenuItem = { role: MenuRole } | { type: 'separator' } | { label: string; link: string } | { label: string; submenu: MenuItem[] };

export function appMenu(options: { dev: boolean }): MenuItem[] {
  const sep = { type: 'separator' } as const;
  return [
    { label: '&File', submenu: [{ role: 'close' }, sep, { role: 'quit' }] },
    { label: '&Edit', submenu: [{ role: 'undo' }, { role: 'redo' }, sep, { role: 'cut' }, { role: 'copy' }, { role: 'paste' }, sep, { role: 'selectAll' }] },
    {
      label: '&View',
      submenu: [
        { role: 'reload' },
        // Developer tools only where Strata runs from source under the dev server.
        ...(options.dev ? [{ role: 'forceReload' } as const, { role: 'toggleDevTools' } as const] : []),
        sep,
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        sep,
        { role: 'togglefullscreen' },
      ],
    },
    { label: '&Window', submenu: [{ role: 'minimize' }, { role: 'close' }] },
    {
      label: '&Help',
      submenu: [
        { label: 'Backing Chains (libvirt)', link: 'https://libvirt.org/kbase/backing_chains.html' },
        { label: 'Live Block Operations (QEMU)', link: 'https://qemu-project.gitlab.io/qemu/interop/live-block-operations.html' },
        sep,
        { role: 'about' },
      ],
    },
  ];
}
