import { describe, expect, it } from "vitest";
import { passwordStrength } from "./password";

describe("passwordStrength", () => {
  it("asks for the server's minimum first", () => {
    expect(passwordStrength("abc")).toMatchObject({ score: 0, label: "Too short", hint: "5 more characters needed." });
  });

  it("rates length and variety, and a repeated character low", () => {
    expect(passwordStrength("abcdefgh").score).toBe(1);
    expect(passwordStrength("Correct-Horse1").score).toBe(3);
    expect(passwordStrength("correct horse battery staple").score).toBe(4);
    expect(passwordStrength("aaaaaaaaaaaaaaaaaaaaaaaa").score).toBe(1);
  });
});
