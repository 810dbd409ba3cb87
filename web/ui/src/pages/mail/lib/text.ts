/** Plain-text mail: split into text and links so a page can render links without HTML. */
export type TextPiece = { kind: "text"; text: string } | { kind: "link"; text: string; href: string };

const LINK = /\b(https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]])|\b(mailto:[^\s<>"']+@[^\s<>"',;]+)/gi;

export function linkify(text: string): TextPiece[] {
  const pieces: TextPiece[] = [];
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    const index = match.index ?? 0;
    if (index > last) pieces.push({ kind: "text", text: text.slice(last, index) });
    pieces.push({ kind: "link", text: match[0], href: match[0] });
    last = index + match[0].length;
  }
  if (last < text.length) pieces.push({ kind: "text", text: text.slice(last) });
  return pieces;
}

/** `url` with one query parameter set (the server's part and body URLs may carry a query). */
export function withParam(url: string, name: string, value: string): string {
  const parsed = new URL(url, window.location.origin);
  parsed.searchParams.set(name, value);
  return parsed.origin === window.location.origin ? `${parsed.pathname}${parsed.search}` : parsed.toString();
}
