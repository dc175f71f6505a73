// The application menu from the shell's plain template (src/main/desktop/app-menu.ts).
import { Menu, shell, type MenuItemConstructorOptions } from 'electron';
import { isAllowedExternalUrl } from '../../shared/links.ts';
import { log } from '../log/logger.ts';
import { appMenu, type MenuItem } from '../desktop/app-menu.ts';

function toElectron(item: MenuItem): MenuItemConstructorOptions {
  if ('role' in item) return { role: item.role };
  if ('type' in item) return { type: 'separator' };
  if ('submenu' in item) return { label: item.label, submenu: item.submenu.map(toElectron) };
  const url = item.link;
  return {
    label: item.label,
    click: () => {
      if (!isAllowedExternalUrl(url)) return;
      shell.openExternal(url).catch((err: unknown) => log.warn('cannot open a link in the browser; the app goes on', { url, err }));
    },
  };
}

export function installAppMenu(dev: boolean): void {
  Menu.setApplicationMenu(Menu.buildFromTemplate(appMenu({ dev }).map(toElectron)));
}
