import { describe, expect, it } from "vitest";
import { isTyping, keyLabel, SHORTCUTS, shortcutFor } from "./shortcuts";

const press = (key: string, target: EventTarget | null = document.body, modifiers: Partial<{ ctrlKey: boolean; metaKey: boolean; altKey: boolean }> = {}) =>
  shortcutFor({ key, target, ctrlKey: false, metaKey: false, altKey: false, ...modifiers });

describe("keyboard shortcuts", () => {
  it("maps Gmail's letters", () => {
    expect(press("j")).toBe("next");
    expect(press("k")).toBe("previous");
    expect(press("o")).toBe("open");
    expect(press("Enter")).toBe("open");
    expect(press("c")).toBe("compose");
    expect(press("r")).toBe("reply");
    expect(press("a")).toBe("replyAll");
    expect(press("f")).toBe("forward");
    expect(press("e")).toBe("archive");
    expect(press("#")).toBe("trash");
    expect(press("s")).toBe("star");
    expect(press("/")).toBe("search");
    expect(press("?")).toBe("help");
    expect(press("Escape")).toBe("close");
    expect(press("U")).toBe("markUnread");
    expect(press("J")).toBe("next");
  });

  it("leaves modified keys and unknown keys alone", () => {
    expect(press("c", document.body, { ctrlKey: true })).toBeNull();
    expect(press("r", document.body, { metaKey: true })).toBeNull();
    expect(press("z")).toBeNull();
  });

  it("does nothing while typing in a field, the editor or a dialog", () => {
    const input = document.createElement("input");
    const editable = document.createElement("div");
    editable.setAttribute("contenteditable", "true");
    const dialog = document.createElement("div");
    dialog.setAttribute("role", "dialog");
    const inside = document.createElement("button");
    dialog.append(inside);
    document.body.append(input, editable, dialog);
    expect(press("c", input)).toBeNull();
    expect(press("c", editable)).toBeNull();
    expect(press("c", inside)).toBeNull();
    expect(isTyping(document.body)).toBe(false);
  });

  it("has one entry per action and labels for the help dialog", () => {
    const actions = SHORTCUTS.map((s) => s.action);
    expect(new Set(actions).size).toBe(actions.length);
    expect(keyLabel("Escape")).toBe("Esc");
    expect(keyLabel("U")).toBe("Shift+U");
  });
});
