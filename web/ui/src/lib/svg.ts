/**
 * An SVG string as an <img> source: data: images are the only inline content the CSP allows.
 * An SVG document shown as an image needs its namespace, which inline SVG markup may leave out.
 */
export function svgDataUrl(svg: string): string {
  const document = /^\s*<svg\b[^>]*\bxmlns=/.test(svg)
    ? svg
    : svg.replace(/<svg\b/, '<svg xmlns="http://www.w3.org/2000/svg"');
  const bytes = new TextEncoder().encode(document);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `data:image/svg+xml;base64,${btoa(binary)}`;
}
