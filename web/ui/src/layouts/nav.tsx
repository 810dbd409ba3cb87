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
  /** Shown to the server's operator only (the owner of its first account). */
  operatorOnly?: boolean;
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
  { to: "/dashboard/contacts", label: "Contacts", manageOnly: true, icon: "M17 20v-1a4 4 0 0 0-4-4H7a4 4 0 0 0-4 4v1M10 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8Zm8-3v6m3-3h-6" },
  { to: "/dashboard/campaigns", label: "Campaigns", manageOnly: true, icon: "M4 10v4a1 1 0 0 0 1 1h2l5 4V5L7 9H5a1 1 0 0 0-1 1Zm12-2a5 5 0 0 1 0 8m2.5-10.5a8.5 8.5 0 0 1 0 13" },
  { to: "/dashboard/developer", label: "Developer", manageOnly: true, icon: "m8 8-4 4 4 4m8-8 4 4-4 4m-2-12-4 16" },
  {
    to: "/dashboard/team",
    label: "Team",
    manageOnly: true,
    icon: "M16 19v-1a4 4 0 0 0-4-4H7a4 4 0 0 0-4 4v1m18 0v-1a4 4 0 0 0-3-3.9M15 3.1a4 4 0 0 1 0 7.8M13.5 7a4 4 0 1 1-8 0 4 4 0 0 1 8 0Z",
  },
  {
    to: "/dashboard/billing",
    label: "Billing",
    icon: "M3 7a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V7Zm0 3h18M7 15h3",
  },
  {
    to: "/dashboard/affiliates",
    label: "Affiliates",
    manageOnly: true,
    icon: "M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1m-2 7.4a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1",
  },
  {
    to: "/dashboard/operator",
    label: "Operator",
    operatorOnly: true,
    icon: "M4 6h16M4 12h16M4 18h16M8 4v4m8 2v4m-6 2v4",
  },
  {
    to: "/dashboard/settings",
    label: "Settings",
    icon: "M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6Zm7.4-3a7.4 7.4 0 0 0-.1-1.3l2-1.6-2-3.4-2.4 1a7.5 7.5 0 0 0-2.2-1.3L14.3 3h-4l-.4 2.4a7.5 7.5 0 0 0-2.2 1.3l-2.4-1-2 3.4 2 1.6a7.4 7.4 0 0 0 0 2.6l-2 1.6 2 3.4 2.4-1a7.5 7.5 0 0 0 2.2 1.3l.4 2.4h4l.4-2.4a7.5 7.5 0 0 0 2.2-1.3l2.4 1 2-3.4-2-1.6c.1-.4.1-.9.1-1.3Z",
  },
];

export function navFor(role: Role, operator = false): NavItem[] {
  const manages = role === "owner" || role === "admin";
  return NAV_ITEMS.filter((item) => (manages || !item.manageOnly) && (operator || !item.operatorOnly));
}
