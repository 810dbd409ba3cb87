import { describe, expect, it } from "vitest";
import { checkQuery, formatQuery, freeWords, parseQuery, withoutTerm, withTerm } from "./search";

describe("search queries", () => {
  it("splits operators, quoted phrases and free words", () => {
    expect(parseQuery('from:anna subject:"big news" has:attachment hello "exact phrase"')).toEqual([
      { operator: "from", value: "anna" },
      { operator: "subject", value: "big news" },
      { operator: "has", value: "attachment" },
      { operator: null, value: "hello" },
      { operator: null, value: "exact phrase" },
    ]);
  });

  it("keeps unknown prefixes as free words and lowercases operator names", () => {
    expect(parseQuery("FROM:Bob http://x.test")).toEqual([
      { operator: "from", value: "Bob" },
      { operator: null, value: "http://x.test" },
    ]);
  });

  it("formats back what it parsed", () => {
    const query = 'from:anna subject:"big news" is:unread word';
    expect(formatQuery(parseQuery(query))).toBe(query);
  });

  it("sets and removes terms", () => {
    expect(withTerm("from:anna hello", "from", "bob")).toBe("hello from:bob");
    expect(withTerm("is:unread", "is", "starred")).toBe("is:unread is:starred");
    expect(withTerm("is:unread", "is", "unread")).toBe("is:unread");
    expect(withoutTerm("is:unread is:starred x", "is", "starred")).toBe("is:unread x");
    expect(withoutTerm("in:Archive x", "in")).toBe("x");
  });

  it("lists free words for highlighting", () => {
    expect(freeWords('from:anna budget "q3 plan"')).toEqual(["budget", "q3 plan"]);
  });

  it("says which operator is wrong before asking the server", () => {
    expect(checkQuery("before:yesterday")).toBe("before: takes a date as YYYY-MM-DD.");
    expect(checkQuery("after:2026-01-02 is:read")).toBeNull();
    expect(checkQuery("is:important")).toBe("is: takes unread, read or starred.");
    expect(checkQuery("has:pictures")).toBe("has: takes attachment.");
    expect(checkQuery('from:""')).toBe("from: needs a value.");
  });
});
