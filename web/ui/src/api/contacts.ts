/** Contacts, lists and CSV import/export (/api/contacts, /api/lists): owners and admins only. */
import { api, seg } from "./client";

export type ContactStatus = "subscribed" | "unsubscribed" | "bounced" | "complained";
export const CONTACT_STATUSES: ContactStatus[] = ["subscribed", "unsubscribed", "bounced", "complained"];

export type FieldValue = string | number | boolean | null;

export type Contact = {
  _id: string;
  email: string;
  firstName: string;
  lastName: string;
  company: string;
  fields: Record<string, FieldValue>;
  tags: string[];
  status: ContactStatus;
  /** On the suppression list: never mailed, whatever the status. */
  suppressed: boolean;
  listIds: string[];
  createdAt: string;
  updatedAt: string;
};

export type ContactPage = { data: Contact[]; nextCursor: string | null };

export type ContactList = {
  _id: string;
  name: string;
  /** A segment's saved filter; null for a list with members of its own. */
  filter: Record<string, unknown> | null;
  size: number;
  createdAt: string;
  updatedAt: string;
};

export type ContactFilters = {
  q?: string;
  status?: ContactStatus | "";
  tag?: string;
  listId?: string;
  suppressed?: "true" | "false" | "";
};

export type ContactInput = {
  email: string;
  firstName?: string;
  lastName?: string;
  company?: string;
  fields?: Record<string, FieldValue>;
  tags?: string[];
  status?: ContactStatus;
};

export type CsvColumns = {
  columns: string[];
  /** What each column becomes when the mapping leaves it out ("" = not imported). */
  guessed: Record<string, string>;
  rows: string[][];
};

export type PreviewRow = { row: number; contact: Contact | null; error: string | null };
export type ImportPreview = { columns: string[]; mapping: Record<string, string>; rows: PreviewRow[] };

export type ContactImport = {
  _id: string;
  status: "running" | "done" | "failed";
  onDuplicate: "update" | "skip";
  mapping: Record<string, string>;
  listId: string | null;
  totalBytes: number;
  bytesRead: number;
  rowsDone: number;
  created: number;
  updated: number;
  skipped: number;
  failed: number;
  errors: { row: number; reason: string }[];
  failure: string;
};

/** The query string of a filter: empty values are left out. */
export function filterQuery(filters: ContactFilters, extra: Record<string, string | undefined> = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...filters, ...extra })) {
    const text = typeof value === "string" ? value.trim() : "";
    if (text !== "") params.set(key, text);
  }
  const query = params.toString();
  return query ? `?${query}` : "";
}

/** The start of a file is enough to show its columns and first rows. */
const SAMPLE_BYTES = 512 * 1024;
const csv = (file: Blob) => new Blob([file], { type: "text/csv" });

export const contactsApi = {
  list: (filters: ContactFilters, cursor?: string | null, limit = 50) =>
    api.get<ContactPage>(`/api/contacts${filterQuery(filters, { cursor: cursor ?? undefined, limit: String(limit) })}`),
  create: (body: ContactInput) => api.post<Contact>("/api/contacts", body),
  update: (id: string, body: Partial<ContactInput>) => api.patch<Contact>(`/api/contacts/${seg(id)}`, body),
  remove: (id: string) => api.delete(`/api/contacts/${seg(id)}`),
  exportUrl: (filters: ContactFilters) => `/api/contacts/export${filterQuery(filters)}`,
  columns: (file: Blob) => api.post<CsvColumns>("/api/contacts/import/columns?rows=5", csv(file.slice(0, SAMPLE_BYTES))),
  preview: (file: Blob, mapping: Record<string, string>) =>
    api.post<ImportPreview>(
      `/api/contacts/import/preview${filterQuery({}, { mapping: JSON.stringify(mapping), rows: "5" })}`,
      csv(file.slice(0, SAMPLE_BYTES)),
    ),
  startImport: (file: Blob, mapping: Record<string, string>, listId: string, onDuplicate: "update" | "skip") =>
    api.post<ContactImport>(
      `/api/contacts/import${filterQuery({}, { mapping: JSON.stringify(mapping), listId, onDuplicate })}`,
      csv(file),
    ),
  importStatus: (id: string) => api.get<ContactImport>(`/api/contacts/import/${seg(id)}`),
};

export const listsApi = {
  list: () => api.get<ContactList[]>("/api/lists"),
  create: (name: string) => api.post<ContactList>("/api/lists", { name }),
  rename: (id: string, name: string) => api.patch<ContactList>(`/api/lists/${seg(id)}`, { name }),
  remove: (id: string) => api.delete(`/api/lists/${seg(id)}`),
  addMembers: (id: string, contactIds: string[]) =>
    api.post<ContactList>(`/api/lists/${seg(id)}/members`, { contactIds }),
  removeMember: (id: string, contactId: string) => api.delete(`/api/lists/${seg(id)}/members/${seg(contactId)}`),
};
