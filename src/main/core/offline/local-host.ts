// Offline jobs open the images themselves, so they exist only where the images are on this
// machine; the rule is shared with the window (src/shared/offline.ts).
export { offlineRefusal } from '../../../shared/offline.ts';
