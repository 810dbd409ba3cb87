import { NavLink } from "react-router";

const tabs = [
  { to: "/dashboard/settings", label: "Account and usage", end: true },
  { to: "/dashboard/settings/security", label: "Security", end: true },
];

/** The tabs shared by the settings pages. */
export function SettingsTabs() {
  return (
    <nav aria-label="Settings" className="mb-6 border-b border-zinc-200 dark:border-zinc-800">
      <ul className="-mb-px flex gap-6 overflow-x-auto">
        {tabs.map((tab) => (
          <li key={tab.to}>
            <NavLink
              to={tab.to}
              end={tab.end}
              className={({ isActive }) =>
                `inline-block border-b-2 px-0.5 pb-3 text-sm font-medium whitespace-nowrap ${
                  isActive
                    ? "border-indigo-600 text-indigo-700 dark:border-indigo-400 dark:text-indigo-300"
                    : "border-transparent text-zinc-600 hover:border-zinc-300 hover:text-zinc-900 dark:text-zinc-400 dark:hover:text-white"
                }`
              }
            >
              {tab.label}
            </NavLink>
          </li>
        ))}
      </ul>
    </nav>
  );
}
