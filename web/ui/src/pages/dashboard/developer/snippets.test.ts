import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

import {
  KEY_PLACEHOLDER,
  curlSnippet,
  nodeSnippet,
  pythonSnippet,
  sampleSender,
  shellQuote,
} from "./snippets";

const input = { baseUrl: "https://mail.acme.test/", apiKey: KEY_PLACEHOLDER, from: "sales@acme.test" };

describe("shellQuote", () => {
  it("survives a real shell, quotes included", () => {
    const tricky = `it's "quoted" $HOME \`id\` \\ done`;
    const echoed = execFileSync("sh", ["-c", `printf %s ${shellQuote(tricky)}`]).toString();
    expect(echoed).toBe(tricky);
  });
});

/** Let a real shell parse the command and report the arguments curl would get. */
function curlArguments(command: string): string[] {
  const printArgs = `python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' `;
  return JSON.parse(execFileSync("sh", ["-c", command.replace(/^curl /, printArgs)]).toString()) as string[];
}

describe("curlSnippet", () => {
  it("posts the sample to /v1/send with the key, as the shell will pass it", () => {
    const text = curlSnippet(input);
    expect(text).toContain("'https://mail.acme.test/v1/send'");
    expect(text).toContain(`'Authorization: Bearer ${KEY_PLACEHOLDER}'`);
    const args = curlArguments(text);
    const body = JSON.parse(args[args.indexOf("-d") + 1] ?? "");
    expect(body).toEqual({
      from: "sales@acme.test",
      to: ["recipient@example.com"],
      subject: "Hello from Mailmark!",
      html: "<p>It works!</p>",
    });
  });

  it("keeps a sender with a quote in it intact", () => {
    const args = curlArguments(curlSnippet({ ...input, from: "o'brien@acme.test" }));
    expect(JSON.parse(args[args.indexOf("-d") + 1] ?? "").from).toBe("o'brien@acme.test");
  });
});

describe("SDK snippets", () => {
  it("fill the npm example with the key, base URL and sender", () => {
    const text = nodeSnippet({ ...input, apiKey: "dm_live_abc" });
    expect(text).toContain('import { Mailmark } from "mailmark-sdk";');
    expect(text).toContain('new Mailmark("dm_live_abc", { baseUrl: "https://mail.acme.test" })');
    expect(text).toContain('from: "sales@acme.test",');
  });

  it("fill the Python example, with from_ for the keyword", () => {
    const text = pythonSnippet(input);
    expect(text).toContain("from mailmark_sdk import Mailmark");
    expect(text).toContain(`with Mailmark("${KEY_PLACEHOLDER}", base_url="https://mail.acme.test") as client:`);
    expect(text).toContain('from_="sales@acme.test",');
  });

  it("are valid programs in their languages", () => {
    const tricky = { ...input, from: 'a"b\\c@acme.test' };
    execFileSync("node", ["--input-type=module", "--check"], { input: nodeSnippet(tricky) });
    execFileSync("python3", ["-c", "import ast, sys; ast.parse(sys.stdin.read())"], {
      input: pythonSnippet(tricky),
    });
  });

  it("escape what would end the string literal", () => {
    const text = nodeSnippet({ ...input, from: 'a"b@acme.test' });
    expect(text).toContain('from: "a\\"b@acme.test",');
  });
});

describe("sampleSender", () => {
  it("uses the domain's first mailbox, else hello@ the domain", () => {
    expect(sampleSender("acme.test", [{ address: "sales@acme.test" }])).toBe("sales@acme.test");
    expect(sampleSender("acme.test", [])).toBe("hello@acme.test");
  });
});
