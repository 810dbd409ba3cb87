import type { Role } from "../api/auth";

export type NavItem = {
  to: string;
  label: string;
  /** An SVG path (24×24, stroked). */
  icon: string;
  /** Exact match only (the overview). */
  end?: boolean;
  /** Shown to owners and admins only. */
  manageOnly?: boolean;
};

export const NAV_ITEMS: NavItem[] = [
  {
    to: "/mail",
    label: "Mail",
    icon: "M3 13h5l1.5 3h5L16 13h5M5 5h14l2 8v5a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1v-5l2-8Z",
  },
  { to: "/dashboard", label: "Overview", end: true, icon: "M3 12 12 4l9 8M5 10v10h5v-6h4v6h5V10" },
  {
    to: "/dashboard/domains",
    label: "Domains",
    manageOnly: true,
    icon: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18Zm0 0c2.5-2.4 3.8-5.4 3.8-9S14.5 5.4 12 3m0 18c-2.5-2.4-3.8-5.4-3.8-9S9.5 5.4 12 3M3.5 9h17m-17 6h17",
  },
  {
    to: "/dashboard/mailboxes",
    label: "Mailboxes",
    icon: "M4 6h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1Zm-1 1 9 6 9-6",
  },
  { to: "/dashboard/developer", label: "Developer", manageOnly: true, icon: "m8 8-4 4 4 4m8-8 4 4-4 4m-2-12-4 16" },
  {
    to: "/dashboard/team",
    label: "Team",
    manageOnly: true,
    icon: "M16 19v-1a4 4 0 0 0-4-4H7a4 4 0 0 0-4 4v1m18 0v-1a4 4 0 0 0-3-3.9M15 3.1a4 4 0 0 1 0 7.8M13.5 7a4 4 0 1 1-8 0 4 4 0 0 1 8 0Z",
  },
  {
    to: "/dashboard/settings",
    label: "Settings",
    icon: "M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6Zm7.4-3a7.4 7.4 0 0 0-.1-1.3l2-1.6-2-3.4-2.4 1a7.5 7.5 0 0 0-2.2-1.3L14.3 3h-4l-.4 2.4a7.5 7.5 0 0 0-2.2 1.3l-2.4-1-2 3.4 2 1.6a7.4 7.4 0 0 0 0 2.6l-2 1.6 2 3.4 2.4-1a7.5 7.5 0 0 0 2.2 1.3l.4 2.4h4l.4-2.4a7.5 7.5 0 0 0 2.2-1.3l2.4 1 2-3.4-2-1.6c.1-.4.1-.9.1-1.3Z",
  },
];

export function navFor(role: Role): NavItem[] {
  const manages = role === "owner" || role === "admin";
  return NAV_ITEMS.filter((item) => manages || !item.manageOnly);
}
