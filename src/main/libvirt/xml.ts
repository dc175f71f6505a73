// Escaping for the few XML documents Strata writes (copy destinations, snapshots, lab domains):
// text and attribute values, with either quote.
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}
