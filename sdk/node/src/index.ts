export { DEFAULT_BASE_URL, Mailmark, VERSION } from "./client.js";
export type { MailmarkOptions } from "./client.js";
export {
  AuthenticationError,
  ConflictError,
  APIConnectionError,
  MailmarkError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  ServerError,
  ValidationError,
  parseRetryAfter,
} from "./errors.js";
export type { MailmarkErrorOptions } from "./errors.js";
export type * from "./types.js";
