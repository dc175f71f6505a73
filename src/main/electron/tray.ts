// The tray icon while Strata runs in the background: its menu lists the running jobs, shows the
// window again, or quits. Linux trays read a menu once, so each change sets it anew.
import { Menu, Tray } from 'electron';
import type { Job } from '../../shared/model.ts';
import { trayMenu, trayTooltip } from '../desktop/background.ts';

export class BackgroundTray {
  readonly #tray: Tray;
  readonly #actions: { show: () => void; quit: () => void };
  #last = '';

  constructor(icon: string, actions: { show: () => void; quit: () => void }) {
    this.#tray = new Tray(icon);
    this.#actions = actions;
    this.#tray.on('click', actions.show);
  }

  update(jobs: readonly Job[]): void {
    const items = trayMenu(jobs);
    const key = JSON.stringify(items);
    if (key === this.#last) return;
    this.#last = key;
    this.#tray.setToolTip(trayTooltip(jobs));
    this.#tray.setContextMenu(
      Menu.buildFromTemplate(
        items.map((item) => {
          if ('type' in item) return { type: 'separator' };
          if ('id' in item) return { label: item.label, click: this.#actions[item.id] };
          return { label: item.label, enabled: false };
        }),
      ),
    );
  }

  destroy(): void {
    this.#tray.destroy();
  }
}
