import type { ApiError } from "../api/client";

/** The error's message when it is about `field` (shown under that field). */
export function fieldError(error: ApiError | null | undefined, field: string): string | null {
  return error && error.field === field ? error.message : null;
}

/** The error's message when no field on the form shows it (shown at the top of the form). */
export function formError(error: ApiError | null | undefined, fields: string[]): string | null {
  if (!error) return null;
  return error.field && fields.includes(error.field) ? null : error.message;
}
