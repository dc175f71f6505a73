// Desktop notifications for jobs (libnotify, to GNOME's, KDE's or any notification server). A
// click brings the window back and shows the job; on Linux a click may not raise the window
// without an activation token (GNOME on Wayland), so the notification's text stands on its own.
import { Notification } from 'electron';
import { log } from '../log/logger.ts';
import type { JobNotice } from '../desktop/job-notice.ts';

// Electron drops a notification's click handler when the object is collected.
const shown = new Set<Notification>();

export function showNotice(notice: JobNotice, icon: string, onClick: (notice: JobNotice) => void): void {
  if (!Notification.isSupported()) {
    log.debug('no notification server; the window and the log still tell', { title: notice.title });
    return;
  }
  const n = new Notification({ title: notice.title, body: notice.body, urgency: notice.urgency, icon, timeoutType: notice.urgency === 'critical' ? 'never' : 'default' });
  shown.add(n);
  n.on('click', () => onClick(notice));
  n.on('close', () => shown.delete(n));
  n.show();
}
