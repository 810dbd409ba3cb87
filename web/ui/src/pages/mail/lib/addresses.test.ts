import { describe, expect, it } from "vitest";
import { addChips, formatChip, parseAddressList, parseOne } from "./addresses";

describe("address chips", () => {
  it("parses bare, named and quoted addresses", () => {
    expect(parseOne("anna@acme.test")).toEqual({ name: "", address: "anna@acme.test", valid: true });
    expect(parseOne("Anna Berg <anna@acme.test>")).toEqual({ name: "Anna Berg", address: "anna@acme.test", valid: true });
    expect(parseOne('"Berg, Anna" <anna@acme.test>')).toEqual({ name: "Berg, Anna", address: "anna@acme.test", valid: true });
    expect(parseOne("mailto:bob@x.test")?.address).toBe("bob@x.test");
    expect(parseOne("   ")).toBeNull();
  });

  it("marks what is not an address", () => {
    expect(parseOne("anna")?.valid).toBe(false);
    expect(parseOne("anna@localhost")?.valid).toBe(false);
    expect(parseOne("a b@c.de")?.valid).toBe(false);
  });

  it("splits lists on commas, semicolons and new lines, not inside quotes or brackets", () => {
    const chips = parseAddressList('"Berg, Anna" <anna@acme.test>, bob@b.test; carl@c.test\ndora@d.test,');
    expect(chips.map((chip) => chip.address)).toEqual(["anna@acme.test", "bob@b.test", "carl@c.test", "dora@d.test"]);
    expect(chips[0]!.name).toBe("Berg, Anna");
  });

  it("adds without duplicates, ignoring case", () => {
    const current = parseAddressList("anna@acme.test");
    expect(addChips(current, parseAddressList("ANNA@acme.test, bob@b.test")).map((c) => c.address)).toEqual([
      "anna@acme.test",
      "bob@b.test",
    ]);
  });

  it("formats chips for the server, quoting names that need it", () => {
    expect(formatChip({ name: "", address: "a@b.test" })).toBe("a@b.test");
    expect(formatChip({ name: "Anna Berg", address: "a@b.test" })).toBe("Anna Berg <a@b.test>");
    expect(formatChip({ name: "Berg, Anna", address: "a@b.test" })).toBe('"Berg, Anna" <a@b.test>');
  });
});
