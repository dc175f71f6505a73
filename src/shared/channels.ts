// The desktop app's IPC channels, named once: the preload and the main process both import them.
// Two verbs, as in the contract: requests with a reply, and events pushed to the page.
export const channels = {
  /** ipcRenderer.invoke(request, method, params) → Reply */
  request: 'strata:request',
  /** webContents.send(event, name, data) */
  event: 'strata:event',
} as const;
