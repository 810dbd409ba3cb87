import { describe, expect, it } from "vitest";
import { choiceOf, initialChoices, mappingOf, pollDelay, progressPercent } from "./importing";

describe("the column choices", () => {
  it("start from what the server guessed for each column", () => {
    const columns = ["E-mail", "First Name", "Plan type", "###"];
    const guessed = { "E-mail": "email", "First Name": "first_name", "Plan type": "field:plan_type", "###": "" };
    expect(initialChoices(columns, guessed)).toEqual([
      { target: "email", field: "E-mail" },
      { target: "first_name", field: "First Name" },
      { target: "field", field: "plan_type" },
      { target: "skip", field: "###" },
    ]);
  });

  it("treat a column the server did not answer for, or an unknown target, safely", () => {
    expect(choiceOf(undefined, " Notes ")).toEqual({ target: "skip", field: "Notes" });
    expect(choiceOf("something_new", "Col")).toEqual({ target: "field", field: "Col" });
  });

  it("name every column in the mapping sent to the server", () => {
    const columns = ["Mail", "Name", "Plan", "Junk"];
    const mapping = mappingOf(columns, [
      { target: "email", field: "" },
      { target: "first_name", field: "" },
      { target: "field", field: " plan " },
      { target: "skip", field: "Junk" },
    ]);
    expect(mapping).toEqual({ Mail: "email", Name: "first_name", Plan: "field:plan", Junk: "" });
  });

  it("leave out a column whose choice is missing", () => {
    expect(mappingOf(["A", "B"], [{ target: "email", field: "" }])).toEqual({ A: "email", B: "" });
  });
});

describe("import progress", () => {
  it("follows the bytes read and is only 100% when done", () => {
    expect(progressPercent({ status: "running", bytesRead: 0, totalBytes: 1000 })).toBe(0);
    expect(progressPercent({ status: "running", bytesRead: 333, totalBytes: 1000 })).toBe(33);
    expect(progressPercent({ status: "running", bytesRead: 1000, totalBytes: 1000 })).toBe(99);
    expect(progressPercent({ status: "done", bytesRead: 1000, totalBytes: 1000 })).toBe(100);
    expect(progressPercent({ status: "running", bytesRead: 5, totalBytes: 0 })).toBe(0);
  });

  it("is asked for soon at first, then at most every two seconds", () => {
    expect([0, 1, 2, 3, 4, 10].map(pollDelay)).toEqual([250, 500, 1000, 2000, 2000, 2000]);
  });
});
