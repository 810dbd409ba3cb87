// The live server the tests talk to, from the environment (tests/sdk/test_node_sdk.py sets it).
import { Mailmark } from "../dist/index.js";

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: these tests need a running Mailmark`);
  return value;
}

export const baseUrl = required("MAILMARK_BASE_URL");
export const apiKey = required("MAILMARK_API_KEY");
/** A mailbox address of the key's domain. */
export const sender = required("MAILMARK_SENDER");
export const domain = sender.split("@")[1];
/** A second key of the same domain, spent by the rate-limit test. */
export const spareApiKey = required("MAILMARK_SPARE_API_KEY");

export const client = new Mailmark(apiKey, { baseUrl });

/** A name no other test (or earlier run) uses. */
export function unique(prefix) {
  return `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}
