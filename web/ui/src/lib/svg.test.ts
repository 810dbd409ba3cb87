import { describe, expect, it } from "vitest";
import { svgDataUrl } from "./svg";

function decode(url: string): string {
  const [prefix, data] = url.split(",");
  expect(prefix).toBe("data:image/svg+xml;base64");
  return new TextDecoder().decode(Uint8Array.from(atob(data!), (c) => c.charCodeAt(0)));
}

describe("svgDataUrl", () => {
  it("adds the SVG namespace an image needs when the markup leaves it out", () => {
    expect(decode(svgDataUrl('<svg width="84" class="segno"><path d="M0 0"/></svg>'))).toBe(
      '<svg xmlns="http://www.w3.org/2000/svg" width="84" class="segno"><path d="M0 0"/></svg>',
    );
  });

  it("keeps a document that has it, and any non-ASCII text", () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"><title>Café</title></svg>';
    expect(decode(svgDataUrl(svg))).toBe(svg);
  });
});
